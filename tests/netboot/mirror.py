#!/usr/bin/env python3
"""The Debian-metadata half of build-mirror.sh (beside this file).

It owns what is awkward in shell: reading Debian control paragraphs (Packages indexes, dpkg
status files, control files), writing a udeb's control from bookworm's own index entry,
relaxing a trixie udeb's Depends to what bookworm has, and the static checks of a finished
mirror. It downloads nothing and writes only the files it is told to. Versions are compared
with `dpkg --compare-versions`, so the rules are dpkg's.

    mirror.py control INDEX PACKAGE INSTALLED_SIZE NOTE [--drop DEP]... > DEBIAN/control
    mirror.py relax CONTROL INDEX...            rewrites CONTROL; prints "changed" or "unchanged"
    mirror.py check ...                         see check() below; exits 1 on any failure
    mirror.py elfcheck ...                      see elfcheck() below; exits 1 on any failure
"""

import argparse
import functools
import hashlib
import os
import re
import subprocess
import sys

# The dependencies of a trixie udeb that may be lowered to the version bookworm has: glibc
# (trixie's installer binaries need GLIBC_2.34 at most; `elfcheck` proves it for each file),
# parted and libdebian-installer (the symbols the binaries use are all in bookworm's; proved
# by `elfcheck` too).
RELAXABLE = {"libc6-udeb", "libparted2-udeb", "libdebian-installer4-udeb"}
# Dropped outright: partman-partitioning's NTFS resizing tool, which has no bookworm udeb here.
DROPPED = {"ntfs-3g-udeb"}


def paragraphs(path):
    """The paragraphs of a deb822 file, each a dict that keeps its fields' order."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    out = []
    for block in re.split(r"\n\s*\n", text):
        para, last = {}, None
        for line in block.split("\n"):
            if not line or line.startswith("#"):
                continue
            if line[0] in " \t" and last:
                para[last] += "\n" + line
                continue
            key, _, value = line.partition(":")
            last = key.strip()
            para[last] = value.strip()
        if "Package" in para:
            out.append(para)
    return out


def by_name(paths):
    """Package name -> paragraph, over several files (the last one read wins)."""
    pk = {}
    for p in paths:
        for para in paragraphs(p):
            pk[para["Package"]] = para
    return pk


@functools.lru_cache(maxsize=None)
def vcmp(a, op, b):
    ops = {">=": "ge", "<=": "le", "=": "eq", ">>": "gt", "<<": "lt", ">": "ge", "<": "le"}
    return subprocess.run(["dpkg", "--compare-versions", a, ops.get(op, op), b]).returncode == 0


def parse_relations(value):
    """'a (>= 1) | b, c' -> [[('a', '>=', '1'), ('b', None, None)], [('c', None, None)]]"""
    groups = []
    for group in value.split(","):
        group = group.strip()
        if not group:
            continue
        alts = []
        for alt in group.split("|"):
            m = re.match(r"\s*([^\s(\[]+)\s*(?:\(\s*([<>=]+)\s*([^)\s]+)\s*\))?", alt)
            if m:
                name = m.group(1).split(":")[0]  # drop ':any' and the like
                alts.append((name, m.group(2), m.group(3)))
        if alts:
            groups.append(alts)
    return groups


def format_relations(groups):
    return ", ".join(
        " | ".join(f"{n} ({op} {v})" if op else n for n, op, v in alts) for alts in groups
    )


def write_paragraph(para, f):
    for k, v in para.items():
        f.write(f"{k}: {v}\n")


class Universe:
    """What can satisfy a dependency: real packages (name -> version) and what they provide."""

    def __init__(self, paras):
        self.real = {}
        self.provides = {}
        for p in paras:
            self.real[p["Package"]] = p["Version"]
            for alts in parse_relations(p.get("Provides", "")):
                for name, _, ver in alts:
                    self.provides.setdefault(name, []).append((p["Package"], ver))

    def satisfies(self, name, op, ver):
        """The package that satisfies name (op ver), or None."""
        if name in self.real and (not op or vcmp(self.real[name], op, ver)):
            return name
        for pkg, pver in self.provides.get(name, []):
            if not op or (pver and vcmp(pver, op, ver)):
                return pkg
        return None

    def resolve(self, groups):
        """(packages chosen, groups nothing satisfies)."""
        chosen, broken = [], []
        for alts in groups:
            for name, op, ver in alts:
                pkg = self.satisfies(name, op, ver)
                if pkg:
                    chosen.append(pkg)
                    break
            else:
                broken.append(alts)
        return chosen, broken


# --- control --------------------------------------------------------------------------------


def cmd_control(a):
    """A repacked udeb's control, from bookworm's own index entry for that udeb."""
    src = by_name([a.index]).get(a.package)
    if src is None:
        sys.exit(f"mirror.py: bookworm's udeb index has no {a.package}")
    keep = ["Package", "Source", "Version", "Architecture", "Maintainer", "Installed-Size",
            "Depends", "Provides", "Section", "Priority", "Description"]
    out = {}
    for k in keep:
        if k == "Installed-Size":
            out[k] = a.installed_size
        elif k in src:
            out[k] = src[k]
    if "Depends" in out and a.drop:
        groups = [alts for alts in parse_relations(out["Depends"])
                  if not any(n in a.drop for n, _, _ in alts)]
        out["Depends"] = format_relations(groups)
        if not groups:
            del out["Depends"]
    out["Section"] = "debian-installer"
    out["Description"] = out.get("Description", a.package).split("\n")[0] + "\n " + a.note
    write_paragraph(out, sys.stdout)


# --- relax ----------------------------------------------------------------------------------


def cmd_relax(a):
    """Lower a trixie udeb's versioned Depends on RELAXABLE packages to bookworm's versions."""
    (para,) = paragraphs(a.control)
    have = by_name(a.index)
    groups = parse_relations(para.get("Depends", ""))
    out, notes = [], []
    for alts in groups:
        if len(alts) == 1 and alts[0][0] in DROPPED:
            notes.append(f"dropped {alts[0][0]}")
            continue
        new = []
        for name, op, ver in alts:
            if op in (">=", ">>") and name in RELAXABLE and name in have:
                got = have[name]["Version"]
                if not vcmp(got, op, ver):
                    upstream = re.sub(r"^\d+:", "", got).rsplit("-", 1)[0]
                    notes.append(f"{name} ({op} {ver}) -> (>= {upstream})")
                    op, ver = ">=", upstream
            new.append((name, op, ver))
        out.append(new)
    if not notes:
        print("unchanged")
        return
    para["Depends"] = format_relations(out)
    with open(a.control, "w", encoding="utf-8") as f:
        write_paragraph(para, f)
    print("changed: " + "; ".join(notes))


# --- check ----------------------------------------------------------------------------------


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cmd_check(a):
    """The static checks of a finished mirror (everything short of booting the installer).

    1. Every file an index names is in the pool, with the index's size and SHA-256.
    2. Every udeb's Depends resolves within the mirror's udebs and the udebs already in the
       netboot initrd (its dpkg status), versions included.
    3. Every .deb's Depends and Pre-Depends resolve within the mirror's .debs, package by
       package: the pool is the union of the BIOS set and the UEFI set, which conflict
       (grub-pc, grub-efi-amd64), so no check here installs them together; build-mirror.sh
       runs apt-get -s install for each set on its own.
    4. Every kernel-module udeb is for the netboot kernel's ABI.
    5. Every udeb the notes name is there, and none of those it must not hold; every .deb
       named by --expect-debs (the boot loaders of both boots) is in the .deb index.
    6. What anna (the installer's udeb loader) will fetch: every udeb of priority standard or
       higher that the initrd lacks, plus those the preseed asks for (network-console), and
       their dependencies; all of them must be in the mirror. The list is written to --anna-out.
    """
    failures = []
    udebs = paragraphs(a.udebs)
    debs = paragraphs(a.debs)
    initrd = paragraphs(a.status)

    for para in udebs + debs:
        path = os.path.join(a.root, para["Filename"])
        if not os.path.isfile(path):
            failures.append(f"{para['Filename']}: named by an index, not in the pool")
        elif os.path.getsize(path) != int(para["Size"]):
            failures.append(f"{para['Filename']}: size differs from the index")
        elif sha256(path) != para["SHA256"]:
            failures.append(f"{para['Filename']}: SHA-256 differs from the index")

    # The initrd's udebs are "install ok unpacked" (configured when it boots); leave out
    # anything marked for removal.
    initrd = [p for p in initrd if p.get("Status", "install ok").startswith("install ok")]
    installed = {p["Package"] for p in initrd}
    uni = Universe(udebs + initrd)
    for p in udebs:
        _, broken = uni.resolve(parse_relations(p.get("Depends", "")))
        for alts in broken:
            failures.append(f"udeb {p['Package']}: Depends {format_relations([alts])} "
                            "is neither in the mirror nor in the initrd")
    deb_uni = Universe(debs)
    for p in debs:
        for field in ("Pre-Depends", "Depends"):
            _, broken = deb_uni.resolve(parse_relations(p.get(field, "")))
            for alts in broken:
                failures.append(f"deb {p['Package']}: {field} {format_relations([alts])} "
                                "is not in the mirror")

    for p in udebs:
        kv = p.get("Kernel-Version")
        if kv and kv != a.abi:
            failures.append(f"udeb {p['Package']} is for kernel {kv}, the netboot kernel is {a.abi}")

    names = {p["Package"] for p in udebs}
    for n in a.expect:
        if n not in names:
            failures.append(f"udeb {n} (one the installer fetched in the run that worked) is missing")
    for n in a.absent:
        if n in names:
            failures.append(f"udeb {n} must not be in the mirror")
    deb_names = {p["Package"] for p in debs}
    for n in a.expect_debs:
        if n not in deb_names:
            failures.append(f"deb {n} (for the BIOS or the UEFI boot) is missing")

    # anna: Priority >= standard (anna/standard_modules defaults to true), for this kernel,
    # not installed yet, plus what the preseed asks for; then the dependency closure.
    rank = {"required": 4, "important": 3, "standard": 2, "optional": 1, "extra": 0}
    by = {p["Package"]: p for p in udebs}
    want = [n for n, p in by.items()
            if rank.get(p.get("Priority", "optional"), 1) >= 2 and n not in installed
            and p.get("Kernel-Version", a.abi) == a.abi]
    want += [n for n in a.choose if n not in installed]
    fetch, todo = set(), list(want)
    while todo:
        n = todo.pop()
        if n in fetch or n in installed:
            continue
        if n not in by:
            failures.append(f"anna would need {n}, which the mirror lacks")
            continue
        fetch.add(n)
        chosen, broken = uni.resolve(parse_relations(by[n].get("Depends", "")))
        todo += chosen
        for alts in broken:
            failures.append(f"anna: {n} needs {format_relations([alts])}, which nothing provides")
    if a.anna_out:
        with open(a.anna_out, "w") as f:
            for n in sorted(fetch):
                f.write(f"{n} {by[n]['Version']}\n")

    for msg in failures:
        print("check: " + msg, file=sys.stderr)
    print(f"{len(udebs)} udebs, {len(debs)} debs, anna fetches {len(fetch)} udebs; "
          f"{len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


# --- elfcheck -------------------------------------------------------------------------------


def readelf(args, path):
    return subprocess.run(["readelf", *args, "-W", path], capture_output=True, text=True).stdout


def is_elf(path):
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def dynsyms(path):
    """(defined, undefined strong) dynamic symbol names of an ELF file."""
    defined, undefined = set(), set()
    for line in readelf(["--dyn-syms"], path).splitlines():
        cols = line.split()
        if len(cols) < 8 or not cols[0].rstrip(":").isdigit():
            continue
        bind, ndx, name = cols[4], cols[6], cols[7].split("@")[0]
        if not name:
            continue
        if ndx == "UND":
            if bind == "GLOBAL":
                undefined.add(name)
        else:
            defined.add(name)
    return defined, undefined


def cmd_elfcheck(a):
    """Can the installer load every program and library of the given unpacked udebs?

    For each ELF file under each TREE: every NEEDED library is in the initrd (--initrd-root,
    its libraries unpacked), in one of the TREEs, or in the file's own tree (the bundled
    libraries that openssh-server-udeb's wrappers put on LD_LIBRARY_PATH); no GLIBC_ symbol
    version is newer than --glibc; and, for programs, every strong undefined symbol is defined
    by one of the libraries it loads (directly or through their own NEEDED).
    """
    libdirs = ["lib", "lib/x86_64-linux-gnu", "usr/lib", "usr/lib/x86_64-linux-gnu", "lib64"]

    def index(root):
        found = {}
        for dirpath, _, files in os.walk(root):
            for fn in files:
                if ".so" in fn:
                    found.setdefault(fn, os.path.join(dirpath, fn))
        return found

    initrd_libs = {}
    for d in libdirs:
        p = os.path.join(a.initrd_root, d)
        if os.path.isdir(p):
            for fn in os.listdir(p):
                initrd_libs.setdefault(fn, os.path.join(p, fn))
    trees = {t: index(t) for t in a.trees}
    shipped = {}
    for t, libs in trees.items():
        for fn, path in libs.items():
            shipped.setdefault(fn, path)

    def needed(path):
        return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf(["-d"], path))

    failures, checked = [], 0
    for t in a.trees:
        for dirpath, _, files in os.walk(t):
            for fn in files:
                path = os.path.join(dirpath, fn)
                if os.path.islink(path) or not is_elf(path):
                    continue
                checked += 1
                rel = os.path.relpath(path, t)
                name = f"{os.path.basename(t)}:/{rel}"
                vers = re.findall(r"GLIBC_(\d+(?:\.\d+)*)", readelf(["-V"], path))
                newest = max(vers, key=lambda v: tuple(map(int, v.split("."))), default=None)
                if newest and tuple(map(int, newest.split("."))) > tuple(map(int, a.glibc.split("."))):
                    failures.append(f"{name} needs GLIBC_{newest}; the installer has {a.glibc}")
                # The libraries it loads, breadth first.
                seen, queue, defined = set(), needed(path), set()
                while queue:
                    so = queue.pop(0)
                    if so in seen:
                        continue
                    seen.add(so)
                    lib = trees[t].get(so) or shipped.get(so) or initrd_libs.get(so)
                    if lib is None:
                        failures.append(f"{name} needs {so}, which neither the initrd nor the mirror has")
                        continue
                    d, _ = dynsyms(lib)
                    defined |= d
                    queue += needed(lib)
                # A library may leave symbols to the program that loads it (libparted-fs-resize
                # does, to libparted): only programs must be complete.
                if "program interpreter" not in readelf(["-l"], path):
                    continue
                d, undefined = dynsyms(path)
                missing = sorted(undefined - defined - d)
                if missing:
                    failures.append(f"{name}: symbols no loaded library defines: {' '.join(missing[:8])}")
    for msg in failures:
        print("elfcheck: " + msg, file=sys.stderr)
    print(f"{checked} ELF files in {len(a.trees)} udebs; {len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


def main():
    ap = argparse.ArgumentParser(prog="mirror.py")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("control")
    c.add_argument("index")
    c.add_argument("package")
    c.add_argument("installed_size")
    c.add_argument("note")
    c.add_argument("--drop", action="append", default=[])
    r = sub.add_parser("relax")
    r.add_argument("control")
    r.add_argument("index", nargs="+")
    k = sub.add_parser("check")
    k.add_argument("--root", required=True, help="the mirror's top directory")
    k.add_argument("--udebs", required=True, help="its udeb Packages index")
    k.add_argument("--debs", required=True, help="its .deb Packages index")
    k.add_argument("--status", required=True, help="the netboot initrd's dpkg status")
    k.add_argument("--abi", required=True)
    k.add_argument("--expect", nargs="*", default=[])
    k.add_argument("--absent", nargs="*", default=[])
    k.add_argument("--expect-debs", nargs="*", default=[], help=".debs that must be in the index")
    k.add_argument("--choose", nargs="*", default=[], help="anna/choose_modules of the preseed")
    k.add_argument("--anna-out")
    e = sub.add_parser("elfcheck")
    e.add_argument("--initrd-root", required=True)
    e.add_argument("--glibc", required=True)
    e.add_argument("trees", nargs="+")
    a = ap.parse_args()
    {"control": cmd_control, "relax": cmd_relax, "check": cmd_check, "elfcheck": cmd_elfcheck}[a.cmd](a)


if __name__ == "__main__":
    main()
