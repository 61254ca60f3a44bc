#!/usr/bin/env bash
# Build the local, partial Debian 12 mirror that Debian's real installer (d-i, netboot, amd64)
# installs from in the lab, with no internet; or reuse the cached one. Print its path. The same
# mirror serves a BIOS install (grub-pc) and a UEFI one (x86_64-efi: QEMU q35 + OVMF;
# grub-efi-amd64 and the signed shim chain).
#
# Usage: tests/netboot/build-mirror.sh DIR      (as root, on Debian 12, after tests/deps)
#
# DIR is a web root: DIR/debian becomes a symlink to the mirror, so that any HTTP server
# serving DIR serves the mirror at /debian (the preseed's mirror/http/directory). The mirror's
# own path is the only line on stdout; progress, the build time and the size go to stderr.
#
# The mirror (${NMT_CACHE_DIR:-/var/cache/nmt}/d-i-mirror/<key>/, <key> a hash of this
# script, mirror.py, the netboot kernel's ABI and the name and SHA-256 of every package that
# goes in, so that a point release makes a new one):
#
#   dists/bookworm/{Release,Release.gpg,InRelease}   Suite: stable, Codename: bookworm,
#                                                    signed by a throwaway key made here
#   dists/bookworm/main/binary-amd64/                Packages{,.gz,.xz} and a Release
#   dists/bookworm/main/debian-installer/binary-amd64/   the same, for the udebs
#   dists/stable -> bookworm
#   pool/main/…, pool/udeb/…                         the .debs and the udebs, file names
#                                                    without epochs (the installer's wget
#                                                    would decode `%3a` and ask for `:`)
#   nmt-lab-archive.gpg, nmt-lab-archive.asc         the signing key's public half
#   nmt-mirror.txt                                   what went in, and the preseed it needs
#
# What is in it, and why it is not a plain copy of bookworm:
#
# * The .debs of the installed system, exactly bookworm's: the required and important
#   priorities and the packages the installer adds (kernel, GRUB, locales, …), with their
#   dependencies and recommends, as apt resolves them from an empty system. usr-is-merged is
#   named (apt's own pick, usrmerge, makes debootstrap fail) and so is zstd (base-installer
#   installs it on purpose), and openssh-server (network-console queues it for the target).
#   The boot loader makes two sets, as grub-installer (trixie's 1.212, below) apt-installs
#   them: BIOS, grub-pc; UEFI on amd64 (/sys/firmware/efi, fw_platform_size 64),
#   grub-efi-amd64 then shim-signed, with recommends (grub-efi-amd64-signed, efibootmgr), plus
#   dosfstools, which partman-basicfilesystems' finish.d installs for the EFI system partition.
#   grub-pc and grub-efi-amd64 conflict, so each set is resolved by its own apt run (apt's
#   system is empty each time) and checked on its own (apt-get -s install); the pool holds the
#   union, and the installer's apt picks from it.
# * The udebs: the registry this lab may use serves only some of bookworm's udebs (the
#   kernel-module udebs and a few others; of the 76 udebs a netboot install fetches from a
#   full bookworm index, 53 answered 404 on 2026-12-06, their sources too). So the installer
#   components come from three places:
#   - bookworm's own udebs that the registry serves (BOOKWORM_UDEBS and the module udebs of
#     the netboot kernel's ABI);
#   - TRIXIE_UDEBS, 17 installer components from trixie, which are shell scripts and a few
#     binaries needing GLIBC_2.34 at most (bookworm has 2.36), with their Depends relaxed to
#     bookworm's versions (mirror.py relax; `elfcheck` proves the binaries link); among them
#     partman-efi (shell scripts only), which a UEFI install needs for the EFI system
#     partition and efivarfs, and which does nothing when booted by BIOS;
#   - REPACKED, 11 udebs rebuilt from bookworm's .debs: dpkg-deb -x, the files Debian's
#     udeb carries, a control file from bookworm's own index entry for that udeb, and
#     dpkg-deb -b. openssh-server-udeb (for network-console) holds bookworm's sshd and
#     ssh-keygen with the libraries they need bundled, behind LD_LIBRARY_PATH wrappers.
#   partman-md is left out on purpose: it needs mdadm-udeb, which the registry lacks.
# So the installer is the real one, running real debootstrap on real packages; only the
# packaging of some installer components is rebuilt.
#
# Signing: the Release is signed by an Ed25519 key generated for each build and thrown away
# (only its public half is kept, in the mirror). The installer checks the Release with
# /usr/share/keyrings/archive.gpg, a symlink to debian-archive-keyring.gpg, and apt in
# /target with its trusted.gpg.d; nothing in d-i takes another key for the main mirror from
# the preseed. So the preseed's early_command appends the key to the installer's keyring and
# drops a base-installer.d hook that copies it into /target before base-installer's first
# apt-get update (nmt-mirror.txt has the exact lines). That keeps every signature check of the
# installer and of apt on, where the unsigned alternative needs
# debian-installer/allow_unauthenticated plus a hook forcing Acquire::AllowInsecureRepositories
# in /target.
#
# It checks the result before keeping it (no VM): gpgv on the Release as the installer runs
# it; debootstrap --print-debs and apt-get update over HTTP on 127.0.0.1; every file each
# index names, by size and SHA-256; the dependency closure of every udeb within the mirror and
# the initrd, and of every .deb within the mirror; what anna will fetch; the linking of every
# binary in the rebuilt and trixie udebs; apt-get -s install of the BIOS set and, separately,
# of the UEFI set. A half-built mirror is never taken for a whole one: it is built in a
# temporary directory beside the cache and renamed at the end.
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LC_ALL=C
umask 022

web=${1:?usage: tests/netboot/build-mirror.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
self=$here/$(basename "$0")
helper=$here/mirror.py
cache=${NMT_CACHE_DIR:-/var/cache/nmt}/d-i-mirror
# The registry: Debian's own archive, through whatever the host's apt reaches it by.
archive=${NMT_DEBIAN_ARCHIVE:-http://deb.debian.org/debian}
di=/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64
started=$(date +%s%N)

say() { printf 'build-mirror: %s\n' "$*" >&2; }
die() {
  printf 'build-mirror: error: %s\n' "$*" >&2
  exit 1
}
elapsed() {
  local ms=$((($(date +%s%N) - started) / 1000000))
  printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

# --- what goes in ------------------------------------------------------------------------------
# The .debs named on top of the required and important priorities, for either boot.
# The kernel is Debian's cloud flavour (virtio, serial console, EFI): a quarter of the
# generic kernel's size, so the installer unpacks it and builds its initramfs in minutes less
# under TCG (the profile names it: base-installer/kernel/image).
DEBS=(linux-image-cloud-amd64 initramfs-tools locales console-setup ifupdown isc-dhcp-client
  busybox wget ca-certificates usr-is-merged zstd openssh-server)
# The boot loader, by boot mode: what grub-installer apt-installs (recommends on, as
# base-installer/install-recommends has it), and for UEFI partman-basicfilesystems' dosfstools
# (the EFI system partition is FAT). The two sets conflict (grub-pc, grub-efi-amd64): they are
# never resolved, downloaded or checked together.
BIOS_DEBS=(grub-pc)
EFI_DEBS=(grub-efi-amd64 grub-efi-amd64-signed shim-signed efibootmgr dosfstools)
# What must be in the mirror's .deb index for each boot (mirror.py check).
BOOT_DEBS=(grub-pc grub-pc-bin grub-efi-amd64 grub-efi-amd64-bin grub-efi-amd64-signed
  shim-signed shim-signed-common shim-helpers-amd64-signed shim-unsigned mokutil efibootmgr
  dosfstools os-prober)
# bookworm's udebs that the registry serves, besides the kernel-module udebs.
BOOKWORM_UDEBS=(base-installer bootstrap-base kickseed-common partman-auto partman-base pkgsel
  rdate-udeb)
# The kernel-module udebs anna fetches for the lab's install (those the initrd lacks): scsi
# for the VM's disk (virtio_blk is there) with the two it depends on (ata, cdrom-core), ext4
# for the root, efi for efivarfs on UEFI. anna loads every module udeb a mirror has, and each
# costs time under TCG, so the lab's mirror leaves out what the VM never uses (sata, pata,
# md, btrfs, xfs, jfs, firewire, pcmcia, isofs, loop).
MODULES=(ata cdrom-core efi ext4 scsi)
TRIXIE_UDEBS=(apt-mirror-setup apt-setup-udeb clock-setup di-utils-mapdevfs disk-detect
  finish-install grub-installer network-console partman-basicfilesystems partman-basicmethods
  partman-efi partman-ext3 partman-partitioning partman-target partman-utils tzsetup-udeb
  user-setup-udeb)
# trixie's udeb index: apt is tried first (a trixie entry for main/debian-installer). On
# 2026-12-06 apt refused it: the registry's Packages.xz (54284 bytes) and Packages.gz did not
# match trixie's InRelease ("File has unexpected size (54284 != 53936). Mirror sync in
# progress?"), and there is no by-hash copy. Then the files are fetched by name from the same
# registry's pool, as pinned here (names and SHA-256 read from that unauthenticated index on
# 2026-12-06: trusted on first use, then kept by exact file name in the cache). partman-efi:
# bookworm's (101) answers 404; trixie's 110 is shell scripts with bookworm-satisfiable,
# unversioned Depends (partman-base, efi-modules, dosfstools-udeb, cdebconf-udeb).
TRIXIE_PINS="
63ea527417929e40f6b8f220405ae7e4a89540299d638c0bffcd6de2a949c8e1 pool/main/a/apt-setup/apt-mirror-setup_0.198_all.udeb
a56fda4905de64e3cb03c62c77187f9049099b0d3cf448d77e5482afa3e6c06a pool/main/a/apt-setup/apt-setup-udeb_0.198_amd64.udeb
26a213d2fe12179eebbd3b65b8165f2bbc366a4bb2b7d7ad813631550b8e52ed pool/main/c/clock-setup/clock-setup_0.166_amd64.udeb
9083d65d739842a80b9f664dc46b373c1358a152d4e3b715f89c3630a8e046e1 pool/main/d/debian-installer-utils/di-utils-mapdevfs_1.155_amd64.udeb
3df7895ffd8c2d8a0e21d7119b029e3aa65faada049bdce231ee9399b641880b pool/main/h/hw-detect/disk-detect_1.171_amd64.udeb
16580af7d2aca8db76485c58f750b2a7f9b466a2ecd4be68fe33f4dc22bee95c pool/main/f/finish-install/finish-install_2.124_all.udeb
f563ab6bf4f079de5d2ecef83c80aa4c5ae109498f4534296661722784d8eb43 pool/main/g/grub-installer/grub-installer_1.212_amd64.udeb
e06d7879c313743d805723e131daf3c52c42c7feffcdc8b4ec6cbf262edb7b4d pool/main/n/network-console/network-console_1.100_amd64.udeb
218e483bf58edcaffa2e15be4c5426ef6349f08c89c398aebd4378a3ce66d940 pool/main/p/partman-basicfilesystems/partman-basicfilesystems_174_amd64.udeb
a380d404a0a10f98d55fbd86240d2402118953157c82da6b572097293275be2f pool/main/p/partman-basicmethods/partman-basicmethods_80_all.udeb
ca596467e15ce55a9ef7351bda33d49d08b384129f7bd2bb60d46c08b6abdc9e pool/main/p/partman-efi/partman-efi_110_amd64.udeb
59695d2a9a8f86e59d47487224f091145abe8e241c9917275749707d3abc9da4 pool/main/p/partman-ext3/partman-ext3_119_all.udeb
7ab7558b62c6c4bdc9ba9e77933f2ed38aaf9f63d9eba519e98db08dfcc71342 pool/main/p/partman-partitioning/partman-partitioning_159_amd64.udeb
380af1c516e6bd8dd8bf5d60d5a6e7e55d690efce2e16c8c10007d24c4133a46 pool/main/p/partman-target/partman-target_133_all.udeb
18e9c54f5f5e494610634afd2d74a1ff63203ffe083b2a023f727961213f4953 pool/main/p/partman-base/partman-utils_237_amd64.udeb
1f485e5b5f54ffba24d82b7b741f708f17fc2ca7ded071d37e2347a28cd363f8 pool/main/t/tzsetup/tzsetup-udeb_0.132+deb13u1_all.udeb
30d1d15d1dd7ce6bf235d47a7f46555a0ae429cf65e5691f44636965ff5f934a pool/main/u/user-setup/user-setup-udeb_1.107_all.udeb
"
# The udebs rebuilt from bookworm's .debs, and the .debs they are made of.
REPACKED=(debootstrap-udeb e2fsprogs-udeb dosfstools-udeb dmidecode-udeb libparted2-udeb
  libparted-fs-resize0-udeb libdevmapper1.02.1-udeb libbsd0-udeb libmd0-udeb os-prober-udeb
  openssh-server-udeb)
REPACK_DEBS=(debootstrap e2fsprogs libext2fs2 libcom-err2 libss2 dosfstools dmidecode libparted2
  libparted-fs-resize0 libdevmapper1.02.1 libbsd0 libmd0 os-prober openssh-server openssh-client)
# Must not be in the mirror: it needs mdadm-udeb, which the registry does not serve.
ABSENT=(partman-md)
# The preseed's anna/choose_modules.
CHOOSE=(network-console)

# --- what the host must have -----------------------------------------------------------------
missing=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_cmd apt-get apt
need_cmd apt-ftparchive apt-utils
need_cmd dpkg-deb dpkg
need_cmd debootstrap debootstrap
need_cmd gpg gpg
need_cmd gpgv gpgv
need_cmd curl curl
need_cmd wget wget   # debootstrap fetches with it
need_cmd xz xz-utils
need_cmd cpio cpio
need_cmd readelf binutils
need_cmd flock util-linux
need_cmd python3 python3
[ -e "$di/linux" ] && [ -e "$di/initrd.gz" ] || missing+=(debian-installer-12-netboot-amd64)
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  die "missing Debian packages: ${missing[*]}
  install them with: apt-get update && apt-get install --no-install-recommends ${missing[*]}
  (or run tests/deps as root)"
fi

tmp=$(mktemp -d /tmp/nmt-mirror.XXXXXX)
work=
cleanup() {
  [ -z "${http_pid:-}" ] || kill "$http_pid" 2>/dev/null || true
  [ -z "${GNUPGHOME:-}" ] || gpgconf --kill all >/dev/null 2>&1 || true
  rm -rf "$tmp"
  [ -z "$work" ] || rm -rf "$work"
}
trap cleanup EXIT

# --- the netboot installer: its kernel ABI and what its initrd already holds ------------------
# A bzImage names its version at 0x200 + the 16-bit offset stored at 0x20e.
off=$(od -An -tu2 -j 526 -N 2 "$di/linux" | tr -d ' ')
abi=$(dd if="$di/linux" bs=1 skip=$((off + 512)) count=64 status=none | tr '\0' '\n' | head -n 1)
abi=${abi%% *}
[[ $abi =~ ^[0-9]+\.[0-9]+\.[0-9]+-[0-9]+-amd64$ ]] || die "cannot read the kernel ABI of $di/linux (got '$abi')"
initrd=$tmp/initrd
mkdir -p "$initrd"
# The dpkg status (the udebs it has) and its libraries (for elfcheck).
(cd "$initrd" && zcat "$di/initrd.gz" | cpio -idm --quiet 'var/lib/dpkg/status' 'lib/*.so*' \
  'lib/x86_64-linux-gnu/*' 'usr/lib/*.so*' 'usr/lib/x86_64-linux-gnu/*' 'lib64/*' 'lib/modules/*/modules.order')
[ -s "$initrd/var/lib/dpkg/status" ] || die "$di/initrd.gz has no var/lib/dpkg/status"
[ -d "$initrd/lib/modules/$abi" ] ||
  die "the netboot kernel is $abi but its initrd's modules are for $(ls "$initrd/lib/modules")"
glibc=$(awk '/^Package: libc6-udeb$/ { p = 1 } p && /^Version:/ { print $2; exit }' "$initrd/var/lib/dpkg/status")
glibc=${glibc%%-*}
[ -n "$glibc" ] || die "the netboot initrd has no libc6-udeb"

# --- a private apt: its own sources, lists and cache; nothing of the host's apt is changed ------
apt_for() { # DIR SUITE-LINE…: make a private apt configuration in DIR
  local d=$1
  shift
  mkdir -p "$d"/{lists/partial,archives/partial,conf.d,prefs.d,sources.d}
  : >"$d/status"
  printf '%s\n' "$@" >"$d/sources.list"
  {
    echo "Dir::Etc::SourceList \"$d/sources.list\";"
    echo "Dir::Etc::SourceParts \"$d/sources.d\";"
    echo "Dir::Etc::Parts \"$d/conf.d\";"
    echo "Dir::Etc::Preferences \"$d/preferences\";"
    echo "Dir::Etc::PreferencesParts \"$d/prefs.d\";"
    echo "Dir::State::Lists \"$d/lists\";"
    echo "Dir::State::status \"$d/status\";"
    echo "Dir::Cache \"$d\";"
    echo "Dir::Cache::Archives \"$d/archives\";"
    echo "Dir::Cache::pkgcache \"\"; Dir::Cache::srcpkgcache \"\";"
    echo 'APT::Architecture "amd64"; APT::Architectures { "amd64"; };'
    echo 'APT::Install-Recommends "true"; APT::Get::AllowUnauthenticated "false";'
    echo 'Acquire::Languages "none"; Acquire::Retries "2";'
    # apt drops to _apt for downloads, which cannot write into a root-only temporary directory.
    echo 'APT::Sandbox::User "root";'
    # The host's proxy, if it has one (its apt.conf.d is not read).
    [ -z "$proxy" ] || echo "Acquire::http::Proxy \"$proxy\";"
  } >"$d/apt.conf"
}
proxy=$(apt-config dump 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -n 1)
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
bw=$tmp/apt-bookworm
apt_for "$bw" "deb [signed-by=$keyring] $archive bookworm main main/debian-installer"
bapt() { APT_CONFIG=$bw/apt.conf "$@"; }

say "apt-get update: bookworm main main/debian-installer from $archive"
# apt-get update can exit 0 having fetched nothing (an unreachable host is only a warning):
# what counts is whether the indexes are there.
bapt apt-get update -qq >"$tmp/update.log" 2>&1 || true
lists=$bw/lists
deb_index=$(echo "$lists"/*_dists_bookworm_main_binary-amd64_Packages)
udeb_index=$(echo "$lists"/*_dists_bookworm_main_debian-installer_binary-amd64_Packages)
if [ ! -s "$deb_index" ] || [ ! -s "$udeb_index" ]; then
  # No registry: take the newest mirror this same script built, if any.
  sums=$(sha256sum "$self" "$helper" | cut -d' ' -f1 | tr '\n' ' ')
  best=
  for f in "$cache"/*/nmt-mirror.txt; do
    [ -e "$f" ] && grep -qx "scripts $sums" "$f" || continue
    [ -n "$best" ] && [ ! "$f" -nt "$best" ] || best=$f
  done
  [ -n "$best" ] || die "apt-get update fetched no bookworm indexes from $archive, and no mirror
  of this script is cached:
$(tail -n 5 "$tmp/update.log")"
  mirror=$(dirname "$best")
  say "warning: apt-get update fetched nothing from $archive; reusing $mirror (its package
  versions are not rechecked)"
  mkdir -p "$web"
  ln -sfn "$mirror" "$web/debian"
  echo "$mirror"
  exit 0
fi
point=$(sed -n 's/^Version: //p' "$lists"/*_dists_bookworm_InRelease | head -n 1)

# --- the package sets, resolved by apt (names, versions and SHA-256; nothing downloaded yet) -----
mapfile -t priority < <(awk '/^Package:/ { p = $2 } /^Priority: (required|important)$/ { print p }' "$deb_index" | sort -u)
# The module udebs must be for the netboot kernel's ABI: at a point release the ABI moves, and
# the host's debian-installer-12-netboot-amd64 and the registry must move together.
udebs=("${BOOKWORM_UDEBS[@]}")
for m in "${MODULES[@]}"; do udebs+=("$m-modules-$abi-di"); done
for u in "${udebs[@]}"; do
  grep -qx "Package: $u" "$udeb_index" || {
    have=$(sed -n 's/^Package: ext4-modules-\(.*\)-di$/\1/p' "$udeb_index" | tr '\n' ' ')
    die "bookworm's udeb index has no $u. The netboot kernel's ABI is $abi; the index has
  module udebs for: $have. Upgrade debian-installer-12-netboot-amd64 (apt-get update &&
  apt-get install debian-installer-12-netboot-amd64) or wait for the registry, so that both
  are of the same point release."
  }
done
kv=$(awk -v p="ext4-modules-$abi-di" '$0 == "Package: " p { f = 1 } f && /^Kernel-Version:/ { print $2; exit }' "$udeb_index")
[ "$kv" = "$abi" ] || die "ext4-modules-$abi-di says Kernel-Version $kv, the netboot kernel is $abi"

uris() { # FILE ARGS…: apt-get --print-uris ARGS into FILE ('URI' name size SHA256:…)
  local out=$1
  shift
  bapt apt-get -qq --print-uris "$@" >"$out" 2>"$out.err" || die "apt-get --print-uris $* failed:
$(tail -n 5 "$out.err")"
}
# The BIOS set and the UEFI set, each from an empty system (they conflict).
uris "$tmp/debs.uris" --download-only install -y "${priority[@]}" "${DEBS[@]}" "${BIOS_DEBS[@]}"
uris "$tmp/efi.uris" --download-only install -y "${priority[@]}" "${DEBS[@]}" "${EFI_DEBS[@]}"
uris "$tmp/udebs.uris" download "${udebs[@]}"
uris "$tmp/repack.uris" download "${REPACK_DEBS[@]}"
[ "$(wc -l <"$tmp/udebs.uris")" = "${#udebs[@]}" ] || die "apt resolved $(wc -l <"$tmp/udebs.uris") of ${#udebs[@]} udebs"
for set in debs efi; do
  grep -q "/usr-is-merged_" "$tmp/$set.uris" || die "apt's $set set lacks usr-is-merged"
  ! grep -q "/usrmerge_" "$tmp/$set.uris" || die "apt's $set set has usrmerge (debootstrap fails with it)"
done
grep -q "/grub-efi-amd64_" "$tmp/efi.uris" && ! grep -q "/grub-pc_" "$tmp/efi.uris" ||
  die "apt's UEFI set should have grub-efi-amd64 and not grub-pc"
# The .deb file names of both sets (what apt puts in its archives).
all_debs=$(cat "$tmp/debs.uris" "$tmp/efi.uris" | awk '{ print $2 }' | sort -u | wc -l)

# trixie: apt first.
tx=$tmp/apt-trixie
apt_for "$tx" "deb [signed-by=$keyring] $archive trixie main/debian-installer"
trixie_via=
if APT_CONFIG=$tx/apt.conf apt-get update -qq >"$tmp/trixie-update.log" 2>&1 &&
  APT_CONFIG=$tx/apt.conf apt-get -qq --print-uris download "${TRIXIE_UDEBS[@]}" >"$tmp/trixie.apt" 2>/dev/null; then
  trixie_via=apt
  # 'URI' name size SHA256:hex -> hex URI
  sed -n "s/^'\([^']*\)' [^ ]* [0-9]* SHA256:\([0-9a-f]*\)$/\2 \1/p" "$tmp/trixie.apt" >"$tmp/trixie.list"
else
  trixie_via=pins
  why=$(grep -m1 -o 'File has unexpected size ([0-9]* != [0-9]*)' "$tmp/trixie-update.log" || tail -n 1 "$tmp/trixie-update.log")
  say "apt refuses trixie's udeb index ($why); using the pinned file names"
  grep . <<<"$TRIXIE_PINS" | while read -r sum path; do echo "$sum $archive/$path"; done >"$tmp/trixie.list"
fi
[ "$(wc -l <"$tmp/trixie.list")" = "${#TRIXIE_UDEBS[@]}" ] || die "trixie: $(wc -l <"$tmp/trixie.list") of ${#TRIXIE_UDEBS[@]} udebs resolved"

key=$({
  sha256sum "$self" "$helper" | cut -d' ' -f1
  echo "$abi $point"
  cat "$tmp/debs.uris" "$tmp/udebs.uris" "$tmp/repack.uris" | awk '{ print $2, $4 }' | sort
  awk '{ print "efi", $2, $4 }' "$tmp/efi.uris" | sort
  awk '{ n = $2; sub(".*/", "", n); print n, $1 }' "$tmp/trixie.list" | sort
} | sha256sum | cut -c1-16)
mirror=$cache/$key

deliver() {
  mkdir -p "$web"
  ln -sfn "$mirror" "$web/debian"
  touch "$mirror"
  say "mirror $mirror ($1): $(du -sh "$mirror" | cut -f1), $(elapsed) s; served from $web at /debian"
  echo "$mirror"
  exit 0
}
[ -s "$mirror/nmt-mirror.txt" ] && deliver "cached"

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock -n 9 || {
  say "waiting for another build (lock $cache/.lock)"
  flock 9
}
[ -s "$mirror/nmt-mirror.txt" ] && deliver "cached, built meanwhile"
say "building $key: bookworm $point, kernel ABI $abi, trixie udebs by $trixie_via"
work=$(mktemp -d "$cache/.build.XXXXXX")
root=$work/mirror
pool=$root/pool/main
upool=$root/pool/udeb
mkdir -p "$pool" "$upool"

# --- downloads -------------------------------------------------------------------------------
dl=$work/dl
mkdir -p "$dl/udebs" "$dl/repack"
bapt apt-get -qq --download-only install -y "${priority[@]}" "${DEBS[@]}" "${BIOS_DEBS[@]}" >"$work/debs.log" 2>&1 ||
  die "downloading the .debs (BIOS set) failed: $(tail -n 5 "$work/debs.log")"
# Then the UEFI set into the same archives: apt keeps what is there and fetches the rest.
bapt apt-get -qq --download-only install -y "${priority[@]}" "${DEBS[@]}" "${EFI_DEBS[@]}" >"$work/efi.log" 2>&1 ||
  die "downloading the .debs (UEFI set) failed: $(tail -n 5 "$work/efi.log")"
(cd "$dl/udebs" && bapt apt-get -qq download "${udebs[@]}") >"$work/udebs.log" 2>&1 ||
  die "downloading bookworm's udebs failed: $(tail -n 5 "$work/udebs.log")"
(cd "$dl/repack" && bapt apt-get -qq download "${REPACK_DEBS[@]}") >"$work/repack.log" 2>&1 ||
  die "downloading the .debs to repack failed: $(tail -n 5 "$work/repack.log")"
[ "$(ls "$bw/archives"/*.deb | wc -l)" = "$all_debs" ] || die "apt downloaded $(ls "$bw/archives"/*.deb | wc -l) of $all_debs .debs"

# trixie's udebs: kept in the cache by exact file name, checked by SHA-256.
tcache=$cache/trixie-udebs
mkdir -p "$tcache" "$dl/trixie"
while read -r sum uri; do
  f=$tcache/${uri##*/}
  if [ ! -s "$f" ] || [ "$(sha256sum <"$f" | cut -d' ' -f1)" != "$sum" ]; then
    curl -fsS --retry 2 ${proxy:+--proxy "$proxy"} -o "$f.part" "$uri" || die "cannot fetch $uri (the pinned trixie udeb is gone
  from the registry? Read the current names from trixie's udeb index and update TRIXIE_PINS)"
    [ "$(sha256sum <"$f.part" | cut -d' ' -f1)" = "$sum" ] || {
      rm -f "$f.part"
      die "$uri does not have the SHA-256 pinned here"
    }
    mv -f "$f.part" "$f"
  fi
  cp "$f" "$dl/trixie/"
done <"$tmp/trixie.list"

# --- the pool ----------------------------------------------------------------------------------
# apt-ftparchive indexes every package under the directory it is given, whatever its
# extension: the .debs and the udebs get a tree each.
put() { # FILE: into pool/main/<l>/ (.deb) or pool/udeb/<l>/, as package_version_arch.ext (no epoch)
  local f=$1 p v a ext l dir
  read -r p v a < <(dpkg-deb --show --showformat='${Package} ${Version} ${Architecture}\n' "$f")
  ext=${f##*.}
  v=${v#*:}
  case $p in lib?*) l=${p:0:4} ;; *) l=${p:0:1} ;; esac
  dir=$pool/$l
  [ "$ext" = deb ] || dir=$upool/$l
  mkdir -p "$dir"
  cp "$f" "$dir/${p}_${v}_${a}.$ext"
}
for f in "$bw/archives"/*.deb "$dl/udebs"/*.udeb; do put "$f"; done

# --- trixie's udebs, Depends relaxed --------------------------------------------------------
relaxed=()
mkdir -p "$work/relax"
for f in "$dl/trixie"/*.udeb; do
  d=$work/relax/$(basename "$f" .udeb)
  dpkg-deb -R "$f" "$d"
  r=$(python3 "$helper" relax "$d/DEBIAN/control" "$udeb_index" "$initrd/var/lib/dpkg/status")
  if [ "$r" = unchanged ]; then
    put "$f"
  else
    relaxed+=("$(dpkg-deb -f "$f" Package): ${r#changed: }")
    dpkg-deb --root-owner-group -Zxz -b "$d" "$d.udeb" >/dev/null
    put "$d.udeb"
  fi
done

# --- udebs repacked from bookworm's .debs ----------------------------------------------------
x=$work/x
mkdir -p "$x"
for f in "$dl/repack"/*.deb; do
  p=$(dpkg-deb -f "$f" Package)
  dpkg-deb -x "$f" "$x/$p"
done
# repack UDEB NOTE [--drop DEP]…: build $work/u/UDEB (filled by the caller) into the pool
repack() {
  local u=$1 note=$2 d=$work/u/$1 size
  shift 2
  find "$d" -path '*/usr/share/doc' -prune -exec rm -rf {} +
  size=$(du -sk --apparent-size "$d" | cut -f1)
  mkdir -p "$d/DEBIAN"
  python3 "$helper" control "$udeb_index" "$u" "$size" "$note" "$@" >"$d/DEBIAN/control"
  dpkg-deb --root-owner-group -Zxz -b "$d" "$work/u/$u.udeb" >/dev/null
  put "$work/u/$u.udeb"
}
take() { # UDEB PKG PATH…: copy PATHs (relative) of the unpacked .deb PKG into UDEB's tree
  local u=$1 p=$2
  shift 2
  mkdir -p "$work/u/$u"
  for path in "$@"; do
    [ -e "$x/$p/$path" ] || [ -L "$x/$p/$path" ] || die "$p has no /$path (bookworm moved it?)"
    (cd "$x/$p" && cp -a --parents "$path" "$work/u/$u/")
  done
}
note="Rebuilt by nmt's tests/netboot/build-mirror.sh from bookworm's .deb (no udeb served)."

take debootstrap-udeb debootstrap usr/sbin/debootstrap usr/share/debootstrap
repack debootstrap-udeb "$note"

# e2fsprogs-udeb carries its libraries itself (there is no libext2fs udeb).
take e2fsprogs-udeb e2fsprogs etc/mke2fs.conf sbin/e2fsck sbin/mke2fs sbin/tune2fs sbin/e2label \
  sbin/resize2fs sbin/dumpe2fs sbin/debugfs sbin/badblocks \
  sbin/fsck.ext2 sbin/fsck.ext3 sbin/fsck.ext4 sbin/mkfs.ext2 sbin/mkfs.ext3 sbin/mkfs.ext4
for l in libext2fs2:libext2fs.so.2 libext2fs2:libe2p.so.2 libcom-err2:libcom_err.so.2 libss2:libss.so.2; do
  (cd "$x/${l%%:*}" && take e2fsprogs-udeb "${l%%:*}" lib/x86_64-linux-gnu/"${l#*:}"*)
done
repack e2fsprogs-udeb "$note"

take dosfstools-udeb dosfstools sbin
repack dosfstools-udeb "$note"
take dmidecode-udeb dmidecode usr/sbin/dmidecode
repack dmidecode-udeb "$note"
for l in libparted2:libparted.so.2 libparted-fs-resize0:libparted-fs-resize.so.0 \
  libdevmapper1.02.1:libdevmapper.so.1.02.1; do
  (cd "$x/${l%%:*}" && take "${l%%:*}-udeb" "${l%%:*}" lib/x86_64-linux-gnu/"${l#*:}"*)
  repack "${l%%:*}-udeb" "$note"
done
for l in libbsd0:libbsd.so.0 libmd0:libmd.so.0; do
  (cd "$x/${l%%:*}" && take "${l%%:*}-udeb" "${l%%:*}" usr/lib/x86_64-linux-gnu/"${l#*:}"*)
  repack "${l%%:*}-udeb" "$note"
done
# os-prober without grub-mount-udeb (not served): it then mounts with mount(8).
take os-prober-udeb os-prober usr/bin usr/lib/os-prober usr/lib/os-probes usr/lib/linux-boot-probes \
  usr/share/os-prober
repack os-prober-udeb "$note" --drop grub-mount-udeb

# openssh-server-udeb: bookworm's .deb sshd links PAM, Kerberos, libwrap, libaudit and
# libsystemd, which no udeb has. The binaries and every library they load but glibc go into
# /usr/lib/nmt-openssh, and /usr/sbin/sshd and /usr/bin/ssh-keygen are wrappers that exec them
# with LD_LIBRARY_PATH set (sshd re-executes itself by its absolute path, which keeps it).
# network-console runs /usr/sbin/sshd with its own sshd_config (no UsePAM: password logins
# are checked against /etc/shadow) and ssh-keygen for the host key.
libs=$work/libs
mkdir -p "$libs"
for f in "$bw/archives"/lib*.deb "$bw/archives"/zlib1g_*.deb; do dpkg-deb -x "$f" "$libs"; done
o=$work/u/openssh-server-udeb
priv=usr/lib/nmt-openssh
mkdir -p "$o/$priv" "$o/usr/sbin" "$o/usr/bin"
cp -a "$x/openssh-server/usr/sbin/sshd" "$x/openssh-client/usr/bin/ssh-keygen" "$o/$priv/"
glibc_so='^(libc|libm|libpthread|libdl|librt|libresolv|libutil|libanl|libmvec|libnss_[a-z]+)\.so\.[0-9]+$|^ld-linux-x86-64\.so\.2$'
queue=("$o/$priv/sshd" "$o/$priv/ssh-keygen")
while [ ${#queue[@]} -gt 0 ]; do
  f=${queue[0]}
  queue=("${queue[@]:1}")
  for so in $(readelf -dW "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
    [[ $so =~ $glibc_so ]] && continue
    [ -e "$o/$priv/$so" ] && continue
    src=$(find "$libs/lib/x86_64-linux-gnu" "$libs/usr/lib/x86_64-linux-gnu" -maxdepth 1 -name "$so" 2>/dev/null | head -n 1)
    [ -n "$src" ] || die "openssh-server-udeb: no .deb of the mirror has $so (needed by ${f##*/})"
    cp -L "$src" "$o/$priv/$so"
    queue+=("$o/$priv/$so")
  done
done
for b in usr/sbin/sshd usr/bin/ssh-keygen; do
  printf '#!/bin/sh\n# nmt lab: bookworm'"'"'s %s with its libraries (build-mirror.sh)\nLD_LIBRARY_PATH=/%s exec /%s/%s "$@"\n' \
    "${b##*/}" "$priv" "$priv" "${b##*/}" >"$o/$b"
  chmod 755 "$o/$b"
done
repack openssh-server-udeb "Rebuilt by nmt's tests/netboot/build-mirror.sh from bookworm's openssh-server and openssh-client .debs: sshd and ssh-keygen with their libraries in /$priv."

# --- the indexes, the Release files, the signature ------------------------------------------------
dists=$root/dists/bookworm
for c in main/binary-amd64 main/debian-installer/binary-amd64; do mkdir -p "$dists/$c"; done
(
  cd "$root"
  apt-ftparchive packages pool/main >"$dists/main/binary-amd64/Packages" 2>"$work/ftparchive.log"
  apt-ftparchive -o APT::FTPArchive::Packages::Extensions=.udeb packages pool/udeb \
    >"$dists/main/debian-installer/binary-amd64/Packages" 2>>"$work/ftparchive.log"
) || die "apt-ftparchive packages failed: $(tail -n 5 "$work/ftparchive.log")"
for c in main/binary-amd64 main/debian-installer/binary-amd64; do
  gzip -9n -k "$dists/$c/Packages"
  xz -6 -k "$dists/$c/Packages"
  # choose-mirror reads this one, Architecture: amd64 included.
  printf 'Archive: stable\nOrigin: nmt-lab\nLabel: nmt-lab\nVersion: %s\nComponent: main\nArchitecture: amd64\n' \
    "$point" >"$dists/$c/Release"
done
ln -s bookworm "$root/dists/stable"
(
  cd "$dists"
  apt-ftparchive \
    -o APT::FTPArchive::Release::Origin=nmt-lab \
    -o APT::FTPArchive::Release::Label=nmt-lab \
    -o APT::FTPArchive::Release::Suite=stable \
    -o APT::FTPArchive::Release::Codename=bookworm \
    -o APT::FTPArchive::Release::Version="$point" \
    -o APT::FTPArchive::Release::Architectures=amd64 \
    -o APT::FTPArchive::Release::Components=main \
    -o APT::FTPArchive::Release::Description="Partial Debian $point mirror for nmt's installer lab (some udebs rebuilt or from trixie)" \
    release . >"$work/Release"
) || die "apt-ftparchive release failed"
mv "$work/Release" "$dists/Release"

export GNUPGHOME=$tmp/gnupg
mkdir -m 700 "$GNUPGHOME"
gpg --batch -q --passphrase '' --quick-gen-key "nmt lab mirror $key (throwaway) <lab@nmt.invalid>" ed25519 sign never 2>"$work/gpg.log" ||
  die "gpg could not make a key: $(cat "$work/gpg.log")"
gpg --batch -q --export >"$root/nmt-lab-archive.gpg"
gpg --batch -q --armor --export >"$root/nmt-lab-archive.asc"
fpr=$(gpg --batch --with-colons --list-keys 2>/dev/null | awk -F: '/^fpr:/ { print $10; exit }')
gpg --batch -q --armor --detach-sign -o "$dists/Release.gpg" "$dists/Release"
gpg --batch -q --clearsign -o "$dists/InRelease" "$dists/Release"
gpgconf --kill all >/dev/null 2>&1 || true
rm -rf "$GNUPGHOME"
unset GNUPGHOME

# --- checks (no VM) ---------------------------------------------------------------------------
say "checking"
# 1. The signature, as the installer's net-retriever and bootstrap-base check it: gpgv with
#    Debian's keyring and this key in one file (what the preseed's early_command makes).
cat "$keyring" "$root/nmt-lab-archive.gpg" >"$tmp/archive.gpg"
gpgv --keyring "$tmp/archive.gpg" "$dists/Release.gpg" "$dists/Release" 2>"$tmp/gpgv.log" &&
  gpgv --keyring "$tmp/archive.gpg" "$dists/InRelease" 2>>"$tmp/gpgv.log" ||
  die "the Release signature does not verify: $(cat "$tmp/gpgv.log")"
# 2. Indexes, pool, dependency closures, anna's list.
python3 "$helper" check --root "$root" \
  --udebs "$dists/main/debian-installer/binary-amd64/Packages" \
  --debs "$dists/main/binary-amd64/Packages" --status "$initrd/var/lib/dpkg/status" --abi "$abi" \
  --expect "${udebs[@]}" "${TRIXIE_UDEBS[@]}" "${REPACKED[@]}" --absent "${ABSENT[@]}" \
  --expect-debs "${BOOT_DEBS[@]}" \
  --choose "${CHOOSE[@]}" --anna-out "$work/anna.txt" >"$tmp/check.out" ||
  die "the mirror fails its checks (above)"
say "  $(cat "$tmp/check.out")"
# 3. Every binary of the rebuilt and trixie udebs links against the installer's libraries.
trees=()
mkdir -p "$work/elf"
for f in "$work"/u/*.udeb "$work"/relax/*.udeb "$dl"/trixie/*.udeb; do
  [ -e "$f" ] || continue
  t=$work/elf/$(dpkg-deb -f "$f" Package)
  [ -d "$t" ] && continue
  dpkg-deb -x "$f" "$t"
  trees+=("$t")
done
# libparted (used by trixie's partman-utils and grub-installer) and the other libraries
# come from the rebuilt udebs, which are among the trees.
python3 "$helper" elfcheck --initrd-root "$initrd" --glibc "$glibc" "${trees[@]}" >"$tmp/elf.out" ||
  die "a rebuilt or trixie udeb would not run in the installer (above)"
say "  $(cat "$tmp/elf.out")"
# 4. Over HTTP on 127.0.0.1, as the installer and apt in /target see it.
ln -s "$root" "$tmp/debian"
python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$tmp" >"$tmp/http.log" 2>&1 &
http_pid=$!
port=
for _ in $(seq 50); do
  port=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$tmp/http.log" | head -n 1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || die "python3 -m http.server did not start: $(cat "$tmp/http.log")"
url=http://127.0.0.1:$port/debian
# debootstrap as bootstrap-base runs it (but --debian-installer, which talks to debconf).
env -u http_proxy -u HTTP_PROXY debootstrap --print-debs --components=main --resolve-deps \
  --keyring="$tmp/archive.gpg" bookworm "$tmp/target" "$url" >"$tmp/debootstrap.out" 2>"$tmp/debootstrap.err" ||
  die "debootstrap --print-debs bookworm fails against the mirror:
$(tail -n 15 "$tmp/debootstrap.err")"
ndebootstrap=$(wc -w <"$tmp/debootstrap.out")
grep -qw usr-is-merged "$tmp/debootstrap.out" || die "debootstrap's list lacks usr-is-merged"
# apt, trusting only this key, as apt in /target will.
ck=$tmp/apt-check
(proxy= && apt_for "$ck" "deb [signed-by=$root/nmt-lab-archive.gpg] $url bookworm main")
APT_CONFIG=$ck/apt.conf apt-get update -qq >"$tmp/apt-check.log" 2>&1 ||
  die "apt does not take the mirror: $(tail -n 5 "$tmp/apt-check.log")"
# Each boot's set on its own, from an empty system (grub-pc and grub-efi-amd64 conflict).
APT_CONFIG=$ck/apt.conf apt-get -qq -s install "${priority[@]}" "${DEBS[@]}" "${BIOS_DEBS[@]}" >"$tmp/bios.sim" 2>>"$tmp/apt-check.log" ||
  die "apt cannot install the BIOS set from the mirror: $(tail -n 5 "$tmp/apt-check.log")"
APT_CONFIG=$ck/apt.conf apt-get -qq -s install "${priority[@]}" "${DEBS[@]}" "${EFI_DEBS[@]}" >"$tmp/efi.sim" 2>>"$tmp/apt-check.log" ||
  die "apt cannot install the UEFI set from the mirror: $(tail -n 5 "$tmp/apt-check.log")"
# The UEFI set holds what grub-installer and partman install on UEFI, the BIOS set grub-pc.
for pkg in grub-efi-amd64 grub-efi-amd64-bin grub-efi-amd64-signed efibootmgr shim-signed mokutil dosfstools os-prober; do
  grep -q "^Inst $pkg " "$tmp/efi.sim" || die "apt-get -s install of the UEFI set does not install $pkg"
done
grep -q "^Inst grub-pc " "$tmp/bios.sim" || die "apt-get -s install of the BIOS set does not install grub-pc"
! grep -q "^Inst grub-pc " "$tmp/efi.sim" || die "apt-get -s install of the UEFI set installs grub-pc"
nbios=$(grep -c '^Inst ' "$tmp/bios.sim")
nefi=$(grep -c '^Inst ' "$tmp/efi.sim")
kill "$http_pid" 2>/dev/null || true
wait "$http_pid" 2>/dev/null || true
http_pid=
say "  signature (gpgv), debootstrap --print-debs ($ndebootstrap packages), apt-get update, install -s of the BIOS set ($nbios packages) and of the UEFI set ($nefi) over HTTP: ok"

# --- what went in, then the rename that makes it a whole mirror ------------------------------
ndebs=$(grep -c '^Package:' "$dists/main/binary-amd64/Packages")
nudebs=$(grep -c '^Package:' "$dists/main/debian-installer/binary-amd64/Packages")
{
  echo "nmt lab: partial Debian $point mirror for the netboot installer (built by tests/netboot/build-mirror.sh)"
  echo "key $key"
  echo "scripts $(sha256sum "$self" "$helper" | cut -d' ' -f1 | tr '\n' ' ')"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) from $archive in $(elapsed) s"
  echo "kernel ABI $abi (netboot $(sed -n 's/^Installer build: //p' "$di/../../version.info" 2>/dev/null || true))"
  echo "signing key $fpr (Ed25519, private half discarded)"
  echo "debs $ndebs, udebs $nudebs (anna fetches $(wc -l <"$work/anna.txt")), trixie udebs by $trixie_via"
  echo "boot: BIOS (grub-pc; apt installs $nbios .debs) or UEFI x86_64 (grub-efi-amd64, shim-signed; $nefi .debs)"
  echo
  echo "# preseed: the mirror (HOST:PORT serving DIR, so that the mirror is at /debian)"
  echo "d-i mirror/country string manual"
  echo "d-i mirror/http/hostname string HOST:PORT"
  echo "d-i mirror/http/directory string /debian"
  echo "d-i mirror/http/proxy string"
  echo "d-i mirror/suite string bookworm"
  echo "d-i mirror/udeb/suite string bookworm"
  echo "# preseed: trust the mirror's key (in the installer, and in /target before base-installer's apt-get update)"
  echo "d-i preseed/early_command string wget -q -O /usr/share/keyrings/nmt-lab-archive.gpg http://HOST:PORT/debian/nmt-lab-archive.gpg && cat /usr/share/keyrings/nmt-lab-archive.gpg >>/usr/share/keyrings/debian-archive-keyring.gpg && mkdir -p /usr/lib/base-installer.d && echo '#!/bin/sh' >/usr/lib/base-installer.d/05nmt-lab-key && echo 'mkdir -p /target/etc/apt/trusted.gpg.d && cp /usr/share/keyrings/nmt-lab-archive.gpg /target/etc/apt/trusted.gpg.d/' >>/usr/lib/base-installer.d/05nmt-lab-key && chmod 755 /usr/lib/base-installer.d/05nmt-lab-key"
  echo
  echo "# preseed: nothing more for UEFI: grub-installer (trixie's 1.212) takes grub-efi-amd64 when"
  echo "# booted by EFI, then shim-signed, and on an empty ESP defaults"
  echo "# grub-installer/force-efi-extra-removable to true (EFI/BOOT/BOOTX64.EFI, which boots"
  echo "# without NVRAM entries too)"
  echo
  echo "# .debs only the UEFI set has (apt-get -s install; the BIOS set has grub-pc and grub-pc-bin instead)"
  comm -13 <(sed -n 's/^Inst \([^ ]*\) .*/\1/p' "$tmp/bios.sim" | sort) \
    <(sed -n 's/^Inst \([^ ]*\) .*/\1/p' "$tmp/efi.sim" | sort)
  echo
  echo "# trixie udebs whose Depends were relaxed"
  printf '%s\n' "${relaxed[@]}"
  echo
  echo "# udebs anna fetches (priority standard or higher, network-console, and their dependencies)"
  cat "$work/anna.txt"
  echo
  echo "# the packages (name version)"
  for idx in main/binary-amd64 main/debian-installer/binary-amd64; do
    awk '/^Package:/ { p = $2 } /^Version:/ { print p, $2 }' "$dists/$idx/Packages" | sort
  done
} >"$root/nmt-mirror.txt"
mv -T "$root" "$mirror" 2>/dev/null || [ -s "$mirror/nmt-mirror.txt" ] || die "cannot move the mirror to $mirror"
# Mirrors not used for 60 days go (each is ~150 MB).
find "$cache" -mindepth 1 -maxdepth 1 -type d -regex '.*/[0-9a-f]\{16\}' -mtime +60 -exec rm -rf {} + 2>/dev/null || true
deliver "built"
