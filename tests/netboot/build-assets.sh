#!/usr/bin/env bash
# Build what the netboot lab's virtual machines boot, into OUTDIR:
#
#   vmlinuz        Debian 12's installer kernel (debian-installer-12-netboot-amd64)
#   initrd.gz      nmt's own tiny busybox system: the "installer" (nmt.role=install) and the
#                  LTSP stand-in (nmt.role=ltsp); see init beside this script
#   mbr.bin        the boot sector the installer writes: it prints its message area on the
#                  serial port, then ends QEMU through isa-debug-exit (exit status 33)
#   BOOTX64.EFI    a GRUB image for the installed disk's EFI system partition: it prints a
#                  marker, then powers off
#   tftp/          the static part of a TFTP root: pxelinux.0 and its modules, and GRUB's
#                  network directory (grub/x86_64-efi/core.efi)
#
# Everything comes from Debian's packages (see tests/deps); nothing is downloaded.
set -euo pipefail

out=${1:?usage: build-assets.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
di=/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64

need() { [ -e "$1" ] || { echo "missing $1: install Debian's $2" >&2; exit 1; }; }
need "$di/linux" debian-installer-12-netboot-amd64
need /bin/busybox busybox-static
need /usr/lib/PXELINUX/pxelinux.0 pxelinux
need /usr/lib/syslinux/modules/bios/ldlinux.c32 syslinux-common
need /usr/lib/grub/x86_64-efi/normal.mod grub-efi-amd64-bin
command -v cpio >/dev/null || { echo "missing cpio: install Debian's cpio" >&2; exit 1; }
command -v grub-mkimage >/dev/null || { echo "missing grub-mkimage: install Debian's grub-common" >&2; exit 1; }
# The busybox that goes into the VM must not need any library.
if ldd /bin/busybox >/dev/null 2>&1; then
  echo "/bin/busybox is dynamically linked: install Debian's busybox-static" >&2; exit 1
fi

rm -rf "$out.tmp"
mkdir -p "$out.tmp"
work=$out.tmp

cp "$di/linux" "$work/vmlinuz"

# --- the boot sector ------------------------------------------------------------------
# 16-bit code at 0x7c00:
#   cli; xor ax,ax; mov ds,ax; mov si,0x7c40; mov dx,0x3f8
#   loop: lodsb; test al,al; jz done; out dx,al; jmp loop
#   done: mov dx,0xf4; mov al,0x10; out dx,al; hlt; jmp $-1
# The message area runs from offset 0x40 to the disk signature (0x1b8), NUL-terminated.
# One bootable partition (type 0x83) from LBA 2048 over the rest of a 64 MiB disk.
mbr=$work/mbr.bin
head -c 512 /dev/zero >"$mbr"
put() { printf "$2" | dd of="$mbr" bs=1 seek=$(($1)) conv=notrunc status=none; }
put 0x00 '\xfa\x31\xc0\x8e\xd8\xbe\x40\x7c\xba\xf8\x03\xac\x84\xc0\x74\x03\xee\xeb\xf8\xba\xf4\x00\xb0\x10\xee\xf4\xeb\xfd'
put 0x40 'NMT-DISK-BOOT blank\r\n\0'
put 0x1be '\x80\xfe\xff\xff\x83\xfe\xff\xff\x00\x08\x00\x00\x00\xf8\x01\x00'
put 0x1fe '\x55\xaa'

# --- the installed disk's EFI loader -----------------------------------------------------
# GRUB runs its embedded configuration without a normal mode: print the marker and power
# off. The installer puts it on a FAT partition at \EFI\BOOT\BOOTX64.EFI.
cat >"$work/efi-early.cfg" <<'EOF'
echo NMT-DISK-BOOT-EFI
halt
EOF
grub-mkimage -O x86_64-efi -p /EFI/BOOT -c "$work/efi-early.cfg" -o "$work/BOOTX64.EFI" echo halt

# --- the initramfs ---------------------------------------------------------------------------
# The installer kernel's own initrd carries the modules the lab needs: e1000 for the NIC,
# USB mass storage for the disk (the installer kernel has no ATA or virtio-blk driver in its
# initrd), and FAT for the EFI partition.
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lab,mnt,modules}
mods=$work/di-modules
mkdir -p "$mods"
( cd "$mods" && zcat "$di/initrd.gz" | cpio -idm --quiet 'lib/modules/*' )
kdir=$(echo "$mods"/lib/modules/*)
order="drivers/net/ethernet/intel/e1000/e1000.ko
drivers/usb/common/usb-common.ko
drivers/usb/core/usbcore.ko
drivers/usb/host/xhci-hcd.ko
drivers/usb/host/xhci-pci.ko
drivers/scsi/scsi_common.ko
drivers/scsi/scsi_mod.ko
crypto/crct10dif_common.ko
lib/crc-t10dif.ko
lib/crc64.ko
lib/crc64-rocksoft.ko
block/t10-pi.ko
drivers/scsi/sd_mod.ko
drivers/usb/storage/usb-storage.ko
fs/nls/nls_cp437.ko
fs/nls/nls_ascii.ko
fs/nls/nls_utf8.ko
fs/fat/fat.ko
fs/fat/vfat.ko"
: >"$root/modules/order"
for m in $order; do
  f=$kdir/kernel/$m
  [ -e "$f" ] || { echo "the installer initrd has no $m" >&2; exit 1; }
  cp "$f" "$root/modules/"
  basename "$m" >>"$root/modules/order"
done
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
# udhcpc's hook: configure the leased address (the lab's servers are on the same link).
cat >"$root/bin/udhcpc-script" <<'EOF'
#!/bin/sh
case $1 in
bound | renew) ip addr add "$ip/${mask:-24}" dev "$interface" ;;
esac
EOF
chmod 755 "$root/bin/udhcpc-script"
cp "$here/init" "$root/init"
chmod 755 "$root/init"
cp "$mbr" "$work/BOOTX64.EFI" "$root/lab/"
( cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet --owner=0:0 ) | gzip -6 >"$work/initrd.gz"
rm -rf "$root" "$mods"

# --- the static TFTP root --------------------------------------------------------------------
tftp=$work/tftp
mkdir -p "$tftp"
cp /usr/lib/PXELINUX/pxelinux.0 "$tftp/"
for m in ldlinux.c32 chain.c32 libcom32.c32 libutil.c32; do
  cp "/usr/lib/syslinux/modules/bios/$m" "$tftp/"
done
grub-mknetdir --net-directory="$tftp" --subdir=grub -d /usr/lib/grub/x86_64-efi >/dev/null 2>&1
rm -rf "$tftp/grub/locale" "$tftp/grub/fonts"
[ -e "$tftp/grub/x86_64-efi/core.efi" ] || { echo "grub-mknetdir made no core.efi" >&2; exit 1; }

rm -rf "$out"
mv "$work" "$out"
