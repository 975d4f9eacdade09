# SPDX-License-Identifier: Apache-2.0
# bash completion for busrt-sim: subcommands, options, scenario names (the
# installed scenarios, or ./scenarios in a checkout) and planted bugs.
_busrt_sim_scenarios()
{
	local d
	for d in ./scenarios "${BUSRT_SCENARIOS:-}" /usr/share/busrt/scenarios /usr/local/share/busrt/scenarios; do
		[[ -n $d && -d $d ]] || continue
		local f
		for f in "$d"/*.yaml; do
			[[ -e $f ]] && { f=${f##*/}; echo "${f%.yaml}"; }
		done
		return
	done
}

_busrt_sim()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	local sub=${COMP_WORDS[1]}
	case $prev in
	--faults)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -W "none" -- "$cur") $(compgen -f -- "$cur"))
		return ;;
	--trace | --tape | --save | --out | --junit | --html)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return ;;
	--save-dir)
		compopt -o dirnames 2>/dev/null
		COMPREPLY=($(compgen -d -- "$cur"))
		return ;;
	--topology)
		COMPREPLY=($(compgen -W "embedded standalone" -- "$cur"))
		return ;;
	--plant)
		COMPREPLY=($(compgen -W "dup swap drop-acked no-resubscribe no-restart miscount lifecycle
			corrupt child-first drop-on-eagain no-resend acl-open svc-open qbytes svc-closed
			shutdown-waits" -- "$cur"))
		return ;;
	--seed | --seeds | -j | --check-every | --poll-ms | --seconds | --command | --name | --buggify | --shard)
		return ;;
	esac
	if ((COMP_CWORD == 1)); then
		COMPREPLY=($(compgen -W "run sweep merge ledger plan replay shrink report record --help --version" -- "$cur"))
		return
	fi
	if [[ $cur == -* ]]; then
		local opts=
		case $sub in
		run) opts="--seed --faults --trace --json --check-determinism --tape --check-every --topology --plant --save --buggify" ;;
		sweep) opts="--seeds -j --faults --check-every --topology --plant --save-dir --json --junit --buggify --shard" ;;
		merge) opts="--json --junit" ;;
		ledger) opts="--dir" ;;
		plan) opts="--seed" ;;
		shrink) opts="--out" ;;
		report) opts="--html --seed --faults --topology --plant --buggify" ;;
		record) opts="--poll-ms --seconds --command --subtree --netlink --name --out" ;;
		esac
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
		return
	fi
	case $sub in
	run | sweep | plan)
		COMPREPLY=($(compgen -W "$(_busrt_sim_scenarios)" -- "$cur"))
		compopt -o filenames 2>/dev/null
		COMPREPLY+=($(compgen -f -X '!*.yaml' -- "$cur")) ;;
	replay | shrink | report)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur")) ;;
	merge)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -X '!*.json' -- "$cur")) ;;
	ledger)
		if ((COMP_CWORD == 2)); then
			COMPREPLY=($(compgen -W "add" -- "$cur"))
		else
			compopt -o filenames 2>/dev/null
			COMPREPLY=($(compgen -f -- "$cur"))
		fi ;;
	esac
}
complete -F _busrt_sim busrt-sim
