
# Network names where a command takes them, asked of oci-macvlan itself with the --config-dir
# and --state-dir the line gives.
(( $+functions[_oci_macvlan_networks] )) ||
_oci_macvlan_networks() {
    local -a dirs names
    local i
    for ((i = 2; i < CURRENT; i++)); do
        case "$words[i]" in
            --config-dir|--state-dir) dirs+=("$words[i]" "$words[i+1]") ;;
            --config-dir=*|--state-dir=*) dirs+=("$words[i]") ;;
        esac
    done
    names=(${(f)"$("$words[1]" "${dirs[@]}" network ls --format '{{.Name}}' 2>/dev/null)"})
    _describe -t networks 'network' names
}
