# SPDX-License-Identifier: Apache-2.0
# bash completion for busrt-cli: commands, their subcommands and options.
# Installed in share/bash-completion/completions (bash-completion loads it
# on demand); or: source busrt-cli.bash. Plain compgen only: no helper of
# the bash-completion package is needed.
_busrt_cli()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	local common="-s -n --timeout --json --proto --silent -v --verbose --buf-size
		--broker-uid --tls-ca --tls-cert --tls-key --qos -h --help -V --version"
	case $prev in
	-s)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return ;;
	--tls-ca | --tls-cert | --tls-key | --raw)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return ;;
	--qos)
		COMPREPLY=($(compgen -W "0 1 2 3" -- "$cur"))
		return ;;
	-n | --timeout | --buf-size | --broker-uid | --count | --seconds | -t | --topics | \
	--exclude | -w | --workers | --payload-size | -i | --iters)
		return ;;
	esac
	# the command: the first word that is one (the address may come first)
	local i cmd= sub=
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		listen | publish | send | broadcast | rpc | broker | benchmark)
			cmd=${COMP_WORDS[i]}
			((i + 1 < COMP_CWORD)) && sub=${COMP_WORDS[i + 1]}
			break ;;
		esac
	done
	if [[ $cur == -* ]]; then
		local more=
		case $cmd in
		listen) more="-t --topics --exclude --count --seconds --reconnect" ;;
		rpc) more="--raw --count --seconds --reconnect -t --topics" ;;
		broker) more="--prometheus" ;;
		benchmark) more="-w --workers --payload-size -i --iters" ;;
		esac
		COMPREPLY=($(compgen -W "$common $more" -- "$cur"))
		return
	fi
	case $cmd in
	"")
		COMPREPLY=($(compgen -W "listen publish send broadcast rpc broker benchmark" -- "$cur")) ;;
	rpc)
		[[ -z $sub ]] && COMPREPLY=($(compgen -W "call call0 notify listen" -- "$cur")) ;;
	broker)
		[[ -z $sub ]] && COMPREPLY=($(compgen -W "test info stats clients client.list topics diagnostics" -- "$cur")) ;;
	esac
}
complete -F _busrt_cli busrt-cli
