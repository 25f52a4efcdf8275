#!/usr/bin/env bash
# Installs the real Prometheus and RabbitMQ (with its management plugin) that
# the collector's integration tests start themselves, on 127.0.0.1, in temp
# directories (internal/promtest, internal/rabbittest).
#
# Idempotent: it does nothing when both are installed and the management
# plugin is enabled. It never leaves the packaged services running, because a
# system rabbitmq-server holding epmd, or a system prometheus on :9090, would
# get in the way of the instances the tests start; the tests need neither.
set -euo pipefail

PKGS=(prometheus rabbitmq-server)
RMQ_PLUGINS=/usr/lib/rabbitmq/bin/rabbitmq-plugins

say() { echo "setup-prometheus-rabbitmq: $*"; }

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if ((${#missing[@]} > 0)); then
	if [[ $(id -u) -ne 0 ]]; then
		say "need root to install: ${missing[*]} (run: sudo $0)" >&2
		exit 1
	fi
	# Keep maintainer scripts from starting the packaged daemons. A
	# policy-rc.d that already exists (container images often ship one) is
	# left as it is; one we add is removed again on the way out.
	added_policy=
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		added_policy=1
	fi
	trap '[[ -n "$added_policy" ]] && rm -f /usr/sbin/policy-rc.d' EXIT
	export DEBIAN_FRONTEND=noninteractive
	# One update is enough unless the lists are missing or the candidate is
	# unknown (a fresh image with empty lists).
	if ! apt-cache policy "${missing[@]}" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
		say "apt-get update"
		apt-get update -qq
	fi
	say "installing ${missing[*]}"
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The packaged services may have been started by a system without a
# policy-rc.d (systemd hosts): stop and disable them, quietly, if so.
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
	for s in prometheus rabbitmq-server; do
		systemctl disable --now "$s" >/dev/null 2>&1 || true
	done
fi

# --offline edits the enabled_plugins file without contacting a node, so it
# works with no broker running. The tests point RABBITMQ_ENABLED_PLUGINS_FILE
# at their own copy, so this is only for a person starting the broker by hand.
if [[ -x $RMQ_PLUGINS ]]; then
	if ! grep -qs rabbitmq_management /etc/rabbitmq/enabled_plugins; then
		if [[ $(id -u) -eq 0 ]]; then
			say "enabling rabbitmq_management (offline)"
			"$RMQ_PLUGINS" enable --offline rabbitmq_management >/dev/null
		else
			say "warning: cannot enable rabbitmq_management system-wide without root" >&2
		fi
	fi
fi

say "prometheus: $(prometheus --version 2>&1 | head -n1)"
say "rabbitmq-server: $(dpkg-query -W -f='${Version}' rabbitmq-server)"
