
# Network names where a command takes them, asked of oci-macvlan itself with the --config-dir
# and --state-dir the line gives.
function __fish_oci_macvlan_networks
    set -l tokens (commandline -opc)
    set -l dirs
    for i in (seq 2 (count $tokens))
        switch $tokens[$i]
            case --config-dir --state-dir
                if test $i -lt (count $tokens)
                    set -a dirs $tokens[$i] $tokens[(math $i + 1)]
                end
            case '--config-dir=*' '--state-dir=*'
                set -a dirs $tokens[$i]
        end
    end
    $tokens[1] $dirs network ls --format '{{.Name}}' 2>/dev/null
end
complete -c oci-macvlan -n "__fish_oci_macvlan_using_subcommand network; and __fish_seen_subcommand_from inspect rm remove connect disconnect" -f -a "(__fish_oci_macvlan_networks)" -d 'network'
