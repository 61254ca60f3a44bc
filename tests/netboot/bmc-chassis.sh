#!/bin/sh
# The chassis of one netboot-lab VM under a BMC: OpenIPMI's ipmi_sim runs this as its
# `chassis_control` program (through a wrapper that passes the VM's directory first):
#
#   bmc-chassis.sh VMDIR get power boot      ->  "power:1|0" and "boot:pxe|default|…" lines
#   bmc-chassis.sh VMDIR set power 1|0       switch the VM on (start its QEMU) or off (stop it)
#   bmc-chassis.sh VMDIR set reset 1         reset it (QEMU's monitor: the same process)
#   bmc-chassis.sh VMDIR set boot pxe|…      the next boot's device (ipmitool's `disk` comes
#                                            as `default`)
#
# A power cycle is ipmi_sim's: `set power 0`, then, a second later, `set power 1`.
#
# VMDIR holds what the lab's harness wrote: qemu.args (QEMU's arguments, one a line: the
# lab's NIC, disk and serial console, without -no-reboot, so that a reset is a reset). This
# script keeps there: qemu.pid, mon.in/mon.out (QEMU's monitor), boot (the pending boot
# device), calls (what the BMC asked, one a line), qemu.exit (the last QEMU's exit status),
# and serial.log, where every QEMU run appends its serial console after a line
# "=== nmt-lab BMC: …" that says what started it.
#
# The machine boots its disk (`-boot order=c`) unless the BMC was told `bootdev pxe`, which
# holds for the next boot only, as on a real BMC: that boot is from the network, then the
# disk (`order=nc`). QEMU is fully detached (setsid, no inherited standard streams), or the
# BMC would wait for it.
set -u
dir=$1
shift
echo "$*" >>"$dir/calls"

# QEMU's pid while it runs (a zombie is not running).
running() {
  p=$(cat "$dir/qemu.pid" 2>/dev/null) || return 1
  [ -n "$p" ] || return 1
  state=$(sed -n 's/^[0-9]* ([^)]*) \(.\).*/\1/p' "/proc/$p/stat" 2>/dev/null) || return 1
  case $state in '' | Z | X) return 1 ;; esac
  tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$dir/" || return 1
  echo "$p"
}

# The boot order for the boot now starting; a pending `pxe` is used up by it.
order() {
  if [ "$(cat "$dir/boot" 2>/dev/null)" = pxe ]; then
    echo default >"$dir/boot"
    echo nc
  else
    echo c
  fi
}

note() { printf '\n=== nmt-lab BMC: %s ===\n' "$*" >>"$dir/serial.log"; }

power_on() {
  running >/dev/null && return 0
  o=$(order)
  note "power on, boot order $o"
  rm -f "$dir/qemu.pid" "$dir/qemu.exit"
  [ -p "$dir/mon.in" ] || mkfifo "$dir/mon.in"
  [ -p "$dir/mon.out" ] || mkfifo "$dir/mon.out"
  set --
  while IFS= read -r a; do set -- "$@" "$a"; done <"$dir/qemu.args"
  # A shell waits for QEMU (nobody else would: the namespace's processes are orphans) and
  # notes how it ended.
  setsid sh -c '
    dir=$1; shift
    qemu-system-x86_64 "$@"
    rc=$?
    echo $rc >"$dir/qemu.exit"
    printf "\n=== nmt-lab BMC: QEMU exited (%s) ===\n" $rc >>"$dir/serial.log"
  ' sh "$dir" "$@" -boot "order=$o,reboot-timeout=1000" -pidfile "$dir/qemu.pid" \
    -monitor "pipe:$dir/mon" </dev/null >>"$dir/serial.log" 2>&1 &
  i=0
  while ! running >/dev/null && [ $i -lt 100 ]; do
    [ -e "$dir/qemu.exit" ] && break
    sleep 0.05
    i=$((i + 1))
  done
}

power_off() {
  p=$(running) || return 0
  kill -TERM "$p" 2>/dev/null
  i=0
  while running >/dev/null && [ $i -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
  running >/dev/null && kill -KILL "$p" 2>/dev/null
  note "power off"
}

reset() {
  running >/dev/null || { power_on; return; }
  o=$(order)
  note "reset, boot order $o"
  # The monitor's FIFO has QEMU as its reader; the time limit covers a QEMU that just died.
  timeout 2 sh -c 'printf "boot_set %s\nsystem_reset\n" "$2" >"$1/mon.in"' sh "$dir" "$o"
}

case ${1:-} in
get)
  shift
  for k in "$@"; do
    case $k in
    power) if running >/dev/null; then echo power:1; else echo power:0; fi ;;
    boot) echo "boot:$(cat "$dir/boot" 2>/dev/null || echo default)" ;;
    esac
  done
  ;;
set)
  shift
  while [ $# -ge 2 ]; do
    case $1 in
    power) if [ "$2" = 1 ]; then power_on; else power_off; fi ;;
    reset) [ "$2" = 1 ] && reset ;;
    boot) echo "$2" >"$dir/boot" ;;
    esac
    shift 2
  done
  ;;
esac
exit 0
