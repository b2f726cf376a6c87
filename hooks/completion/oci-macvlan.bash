
# Network names where a command takes them (network inspect, rm; the network of connect and
# disconnect), asked of oci-macvlan itself with the --config-dir and --state-dir the line gives.
_oci_macvlan_networks() {
    local i word dirs=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        case "$word" in
            --config-dir|--state-dir) dirs+=("$word" "${COMP_WORDS[i+1]}") ;;
            --config-dir=*|--state-dir=*) dirs+=("$word") ;;
        esac
    done
    "${COMP_WORDS[0]}" "${dirs[@]}" network ls --format '{{.Name}}' 2>/dev/null
}

# Which positional argument of `network SUB` the word being completed is (1 = the first), or 0
# when it is no network name: a flag, a flag's value, another command.
_oci_macvlan_name_position() {
    local i word sub="" network=0 position=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        case "$word" in
            --config-dir|--state-dir|--log-level|--host-id|-f|--format|--filter|--ip|--ip6|--mac|--ifname|--pid|--netns|--runtime|--root)
                ((i++)); continue ;;
            -*) continue ;;
        esac
        if ((network == 0)); then
            [[ "$word" == network ]] && network=1 || return 1
        elif [[ -z "$sub" ]]; then
            sub="$word"
        else
            ((position++))
        fi
    done
    case "${COMP_WORDS[COMP_CWORD-1]}" in
        --config-dir|--state-dir|--log-level|--host-id|-f|--format|--filter|--ip|--ip6|--mac|--ifname|--pid|--netns|--runtime|--root)
            return 1 ;;
    esac
    [[ "${COMP_WORDS[COMP_CWORD]}" == -* ]] && return 1
    case "$sub" in
        inspect|rm|remove) return 0 ;;
        connect|disconnect) ((position == 0)) && return 0 ;;
    esac
    return 1
}

_oci_macvlan() {
    if _oci_macvlan_name_position; then
        local cur="${COMP_WORDS[COMP_CWORD]}"
        COMPREPLY=( $(compgen -W "$(_oci_macvlan_networks)" -- "${cur}") )
        return 0
    fi
    _oci__macvlan "$@"
}

complete -F _oci_macvlan -o bashdefault -o default oci-macvlan
