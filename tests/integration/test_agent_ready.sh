#!/usr/bin/env bash
# An agent's /readyz while its manager is stopped (SIGSTOP), --down-after 10s:
# a stop of 5 s, past the 3 s deadline of the heartbeat under way (it fails)
# but inside down-after (the manager still counts the node up), leaves it
# ready; a longer stop makes it unready once down-after passed ("not
# attached to the manager ...: no heartbeat answered for N ms"), and it is
# ready again once the manager runs (SIGCONT).
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || { echo "# SKIP: curl is not installed (it reads /readyz)"; exit 77; }
PORTS=()
while [ ${#PORTS[@]} -lt 5 ]; do
	p=$(free_port)
	case " ${PORTS[*]} " in *" $p "*) ;; *) PORTS+=("$p") ;; esac
done
NAS_PORT=${PORTS[0]}; MGR_PORT=${PORTS[1]}; EV_PORT=${PORTS[2]}; A_PORT=${PORTS[3]}
A_HTTP=http://127.0.0.1:${PORTS[4]}
MGR_URL="tcp://127.0.0.1:$MGR_PORT"

status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$A_HTTP/readyz"; }
ready() { [ "$(status)" = 200 ]; }
not_attached() { [ "$(status)" = 503 ] && curl -s --max-time 5 "$A_HTTP/readyz" | grep -q "not attached"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

start_nas nas "$NAS_PORT" || { echo "nas did not start"; exit 1; }
start_manager manager "$MGR_PORT" "$EV_PORT" "tcp://127.0.0.1:$NAS_PORT" --heartbeat-ms 100 \
	--down-after 10s || { echo "manager did not start"; exit 1; }
start a1 "$AGENT_BIN" --node a1 --manager "$MGR_URL" --listen "tcp://127.0.0.1:$A_PORT" \
	--interval-ms 500 --demo d1:64K --http "$A_HTTP"
check "the agent is ready once attached" wait_for 20 ready

# 5 s stopped: /readyz read every 0.25 s (it is checked once a second).
kill -STOP "$PID_manager"
samples=0; unready=0; end=$(( $(now_ms) + 5000 ))
while [ "$(now_ms)" -lt "$end" ]; do
	[ "$(status)" = 200 ] || unready=$((unready + 1))
	samples=$((samples + 1))
	sleep 0.25
done
kill -CONT "$PID_manager"
echo "# $samples samples while stopped, $unready not 200; load: $(cut -d' ' -f1-3 /proc/loadavg)"
check "a heartbeat failed while the manager was stopped (its 3 s deadline)" \
	log_has a1 "heartbeat to manager failed"
check "the agent stayed ready through it (5 s < --down-after 10s)" [ "$unready" -eq 0 ]
check "and is ready after" wait_for 10 ready

# Stopped past down-after: unready, then ready again once it runs.
kill -STOP "$PID_manager"
check "the agent is unready ('not attached') once no heartbeat was answered for down-after" \
	wait_for 30 not_attached
why=$(curl -s --max-time 5 "$A_HTTP/readyz")
echo "# /readyz: $why"
quiet=$(printf '%s\n' "$why" | sed -n 's/.*: no heartbeat answered for \([0-9]*\) ms.*/\1/p')
check "... and says what happened: no heartbeat answered for ${quiet:-?} ms, at least down-after (10000)" \
	sh -c "printf '%s\n' \"\$1\" | grep -q '^not attached to the manager $MGR_URL: no heartbeat answered for' &&
	[ '${quiet:-0}' -ge 10000 ]" _ "$why"
kill -CONT "$PID_manager"
check "the agent is ready again once the manager runs" wait_for 30 ready
finish
