//! The `nmt` command line: every action of the specification, as clap definitions.
//!
//! The shapes of these commands are scripted against; change them only by adding.

use std::path::PathBuf;

use clap::{ArgGroup, Parser, Subcommand};

const ABOUT: &str = "Netboot management: name, group and set the next-boot policy of PXE machines";

const LONG_ABOUT: &str = "\
nmt manages a pool of machines that PXE-boot. Register machines by MAC (or let nmtd discover \
them from the DHCP server's log), name them, put them in groups, and set each machine's or \
group's next-boot policy. nmt writes the pxelinux, GRUB and iPXE entries, the ISC dhcpd \
include, the dnsmasq hosts file, an /etc/hosts fragment and per-group node lists that make \
it happen. Every change is an event in an append-only log, so `nmt history` can tell who did \
what and when.

Targets are noderanges: a MAC, a name, node[001-300], node[1-5,9], comma lists, and @group.

Policies: localboot, install[:PROFILE], save-image:NAME, restore-image:NAME, ltsp, \
nfsroot:SERVER:/EXPORT, custom:ENTRY.";

const EXAMPLES: &str = "\
Examples:
  nmt machine add 52:54:00:12:34:56 --name node001 --group physics --ip 10.0.0.11
  nmt machine import nodes.csv            # mac,name,ip,group rows
  nmt group add physics --policy localboot
  nmt assign node[001-060] physics
  nmt policy @physics ltsp                # the whole group boots LTSP next time
  nmt policy node007 install --once       # reinstall one machine, once
  nmt machines @physics --json
  nmt history node007
  nmt machine rm @retired --dry-run       # what it would append and remove; nothing done
  nmt machine rm @retired --yes           # a script: more than one machine needs --yes
  nmt machine restore node042             # undo a removal

Bulk destruction asks first: removing more than one machine, or making more than one
machine install or restore an image at its next boot, lists the machines and asks
\"Proceed? [y/N]\" on a terminal; a script must pass --yes (else exit status 3, nothing done).
After every change nmt says what machines will boot next where it changed, e.g.
\"3 machines will now install at next boot: lab01, lab02, lab03\".

State lives in --state DIR (or $NMT_STATE, default ./nmt-state), created by `nmt init`; \
generated files go under it unless DIR/nmt.toml names real paths (see `nmt config --default`).";

/// The `nmt` command line.
#[derive(Parser, Debug)]
#[command(name = "nmt", version, about = ABOUT, long_about = LONG_ABOUT, after_help = EXAMPLES)]
pub struct Cli {
    /// The state directory (event store, configuration, generated files by default).
    #[arg(long, global = true, env = "NMT_STATE", value_name = "DIR")]
    pub state: Option<PathBuf>,

    /// A configuration file (default: DIR/nmt.toml when present, else built-in defaults).
    #[arg(long, global = true, env = "NMT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print JSON instead of tables and messages (for scripts).
    #[arg(long, global = true)]
    pub json: bool,

    /// Only show what the command would do: the events it would append (kind and JSON), the
    /// files it would write or remove, and what the machines would boot next. Nothing is
    /// appended, written, reloaded or asked. Every command takes it.
    #[arg(long, global = true)]
    pub dry_run: bool,

    /// Do a bulk destruction without asking: removing more than one machine, or making more
    /// than one machine install or restore an image (erasing its disk) at its next boot.
    /// Without it nmt lists the machines and asks on a terminal, and refuses in a script
    /// (exit status 3, nothing done); check the list (--dry-run shows it), then pass --yes.
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,

    /// Seconds to wait while another nmt process holds the store.
    #[arg(long, global = true, default_value_t = 10.0, value_name = "SECONDS")]
    pub wait: f64,

    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create a new, empty nmt state (its event store, site key and installer password).
    #[command(after_help = "\
nmt never creates a state by surprise: every other command on a directory with no state says
so and changes nothing. `nmtd`'s first start also creates one, and says so.

Examples:
  nmt init                          # ./nmt-state, or $NMT_STATE
  nmt init --state /var/lib/nmt     # where the packaged nmtd.service keeps it

Running it again on an existing state changes nothing and says so (exit 0).")]
    Init,

    /// Register, import or remove machines.
    #[command(subcommand)]
    Machine(MachineCmd),

    /// Name one machine, or name a range by a pattern in order of first appearance.
    #[command(after_help = "\
Examples:
  nmt name 52:54:00:12:34:56 node001
  nmt name @unknown --pattern 'node{001}'   # node001, node002, … in the order they were first seen
  nmt name lab[1-20] --pattern 'lab{01}.school.example'")]
    Name {
        /// The machine (MAC or current name), or a noderange with --pattern.
        target: String,
        /// The new name (a host name: letters, digits, '-', dots between labels).
        #[arg(required_unless_present = "pattern", conflicts_with = "pattern")]
        name: Option<String>,
        /// A pattern such as 'node{001}': the counter starts at the number in braces and keeps
        /// its zero padding.
        #[arg(long, value_name = "PATTERN")]
        pattern: Option<String>,
    },

    /// Create, remove or list groups.
    #[command(subcommand)]
    Group(GroupCmd),

    /// Move machines into a group.
    #[command(after_help = "\
Examples:
  nmt assign node[001-060] physics
  nmt assign @localboot,node301 chemistry
  nmt assign node042 physics --ip 10.0.0.42    # and its fixed address (one machine)

Moving more than one machine into a group whose policy installs or restores an image
(erasing their disks at their next boot) lists them and asks; a script needs --yes.
A fixed address is a DHCP fact: the DHCP server's file changes and the server is reloaded.")]
    Assign {
        /// The machines (a noderange).
        range: String,
        /// The group.
        group: String,
        /// Give the machine this fixed IPv4 address too (the range must name one machine).
        #[arg(long, value_name = "IPV4", conflicts_with = "no_ip")]
        ip: Option<std::net::Ipv4Addr>,
        /// Take the machines' fixed addresses away (they get addresses from the pool).
        #[arg(long)]
        no_ip: bool,
    },

    /// Set the next-boot policy of machines, or of a group with @group.
    #[command(after_help = "\
POLICY is one of: localboot, install[:PROFILE], save-image:NAME, restore-image:NAME, ltsp,
nfsroot:SERVER:/EXPORT, custom:ENTRY; or `inherit` to drop machines' own policy so that they
follow their group again.

Examples:
  nmt policy @unknown install             # every new machine installs
  nmt policy @physics ltsp                # the group's policy
  nmt policy node007 install --once       # one machine, next boot only, then back
  nmt policy @lab restore-image:lab --once --yes  # each member re-images once, then as before
  nmt policy node007 inherit

A policy that erases disks (install, restore-image) reaching more than one machine (a group
of more than one member included) lists them and asks on a terminal; a script needs --yes.
nmt then prints what machines will boot next, e.g. \"3 machines will now install at next
boot: lab01, lab02, lab03\".")]
    Policy {
        /// The machines (a noderange), or exactly one @group to set the group's own policy.
        range: String,
        /// The policy.
        policy: String,
        /// Next boot only: reverts once the machine has booted it.
        #[arg(long)]
        once: bool,
        /// With @group: set each member's own policy instead of the group's.
        #[arg(long)]
        members: bool,
        /// Then reboot the machines it set, through their BMCs (`nmt bmc set`): each one's
        /// next boot is set to the network first, then it is power-cycled (switched on if
        /// off). One result line per machine; exit status 1 if any failed.
        #[arg(long)]
        reboot: bool,
    },

    /// List machines, all or a noderange.
    #[command(after_help = "\
Columns: MAC, NAME, GROUP, POLICY (the effective one; `*` marks a machine's own policy and
`*once` a next-boot-only one), IP, ROOTDEV, LAST SEEN.
--json prints mac, name, group, policy (the machine's own, or null), effective_policy, once,
ip, rootdev, last_seen and more.

Examples:
  nmt machines
  nmt machines @unknown
  nmt machines --json | jq -r '.[] | select(.group==\"physics\") | .name'")]
    Machines {
        /// A noderange (default: every machine).
        range: Option<String>,
        /// The inventory as it was at this time (what had been observed by then).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },

    /// List, set or remove root-device mappings (MAC → installed root device).
    #[command(after_help = "\
Examples:
  nmt rootdev                      # list the mapping
  nmt rootdev set @lab /dev/sda1
  nmt rootdev rm node007")]
    Rootdev {
        #[command(subcommand)]
        cmd: Option<RootdevCmd>,
    },

    /// Define, remove or list boot profiles (installers, LTSP, imagers, custom entries).
    #[command(subcommand)]
    Profile(ProfileCmd),

    /// List, show or remove saved disk images (what `save-image:NAME` saved)
    #[command(subcommand)]
    Image(ImageCmd),

    /// How each machine's power is reached: its BMC (IPMI over LAN, Redfish) or Wake-on-LAN,
    /// per machine or per group.
    #[command(subcommand)]
    Bmc(BmcCmd),

    /// Switch machines on or off, power-cycle or reset them, or read their power state,
    /// through their BMCs, in parallel.
    #[command(after_help = "\
Each machine's own BMC setting is used, else its group's (`nmt bmc set`). Before on, cycle
and reset, nmt sets the machine's next boot to the network (IPMI `chassis bootdev pxe`,
Redfish boot override Once), so it boots what nmt decided; a cycle or reset of a machine that
is off switches it on; on (off) of a machine that is already on (off) changes nothing, not
even its next boot. Machines are acted on [power] parallel at once (16), each within
[power] timeout seconds (30). One line per machine; exit status 1 if any failed. Every
action and its result is recorded: `nmt history node42` shows \"power cycle … ok\" and who.

Examples:
  nmt power status @lab
  nmt power cycle node[001-060] --json
  nmt policy @physics ltsp --reboot       (set the policy, then reboot into it)
  nmt schedule add lab-boot --cron '55 1 * * *' -- power on @lab")]
    Power {
        /// on, off, cycle, reset or status.
        #[arg(value_enum)]
        op: PowerArg,
        /// The machines (a noderange).
        range: String,
    },

    /// Run an nmt command at times a cron pattern names (nmtd runs it), and check that every
    /// machine it targeted did what it was meant to.
    #[command(subcommand)]
    Schedule(ScheduleCmd),

    /// Record an install report by hand (the same event as the installer's report).
    #[command(after_help = "\
A machine in `unknown` moves to `localboot`, and its root device is recorded.

Example:
  nmt installed 52:54:00:12:34:56 /dev/sda1")]
    Installed {
        /// The machine (MAC or name).
        machine: String,
        /// The installed root device, e.g. /dev/sda1.
        rootdev: String,
    },

    /// Every event that touched a machine, oldest first, with who did it.
    #[command(after_help = "\
TIME is RFC 3339, `YYYY-MM-DD HH:MM`, `yesterday 02:00`, `2h ago` or `now` (local time
unless an offset is given).

Examples:
  nmt history node007
  nmt history node007 --since 'yesterday 00:00' --json")]
    History {
        /// The machine (MAC or name).
        machine: String,
        /// Only events observed at or after this time.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only events observed at or before this time.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Only these kinds of event, comma-separated (e.g. DhcpSeen,BootEntryUsed,
        /// MachinePolicySet,GroupPolicySet,InstallReported,InstallerLogged).
        #[arg(long, value_name = "KINDS", value_delimiter = ',')]
        kind: Vec<String>,
    },

    /// One line per boot: when it asked DHCP, the address it got, the entry it fetched, what
    /// that meant, and who set that policy and when.
    #[command(after_help = "\
Examples:
  nmt boots lab07 --since 'yesterday 00:00'     # which image did lab07 boot last night?
  nmt boots node061 --json | jq '.[] | {at, policy, set_by}'")]
    Boots {
        /// The machine (MAC or name).
        machine: String,
        /// Only boots at or after this time.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
    },

    /// Fold the whole log afresh and compare with the live state and the files on disk.
    #[command(after_help = "\
Exits 1 and lists the differences when there are any.

Example:
  nmt verify")]
    Verify,

    /// Everything known about one machine, and its generated boot entry.
    #[command(after_help = "\
Examples:
  nmt show node007
  nmt show 52:54:00:12:34:56 --json | jq .boot_entry")]
    Show {
        /// The machine (MAC or name).
        machine: String,
        /// The machine as it was at this time.
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },

    /// Bring every generated file up to date (and remove ones nmt no longer needs).
    #[command(after_help = "\
With --check nothing is written: the differences are listed, and the exit status is 1 when
there are any (use it in monitoring).

Examples:
  nmt render
  nmt render --check || echo 'generated files drifted'")]
    Render {
        /// Only report drift; exit 1 when files are missing, differ or are stale.
        #[arg(long)]
        check: bool,
    },

    /// What nmtd is doing: each followed log's lines, events, rejects, position and lag.
    #[command(after_help = "\
Examples:
  nmt status
  nmt status --json | jq '.sources[] | {path, rejects, last_reject}'")]
    Status,

    /// A one-time link that logs you into nmtd's web UI as yourself.
    ///
    /// nmtd's web UI shows its pages to anyone who reaches it, but makes changes only for a
    /// logged-in user. This asks the running nmtd, through its control socket, for a link:
    /// the socket's permissions decide whether you may ask, and its peer credentials say who
    /// you are. Opening the link (within 60 seconds, once) starts a web session as your Unix
    /// user, with exactly the rights `[access]` gives you; what you change is recorded as
    /// "USER via web". The link is kept in nmtd's memory only, never in the event log.
    /// (Users listed under [web.users] may log in with their password instead.)
    #[command(after_help = "\
Examples:
  nmt web-login                        # prints http://127.0.0.1:8018/login/link/…
  xdg-open \"$(nmt web-login --json | jq -r .url)\"")]
    WebLogin,

    /// Export or import the event log.
    #[command(subcommand)]
    Journal(JournalCmd),

    /// Rebuild from archived DHCP/TFTP logs.
    #[command(subcommand)]
    Replay(ReplayCmd),

    /// The installer password of installed machines and installer consoles: show the
    /// generated one until it is acknowledged, set or rotate it (admins only).
    #[command(subcommand)]
    InstallerPassword(InstallerPasswordCmd),

    /// Show the configuration in force (paths of generated files), or the defaults.
    #[command(after_help = "\
Examples:
  nmt config                          # where this state's files go
  nmt config --default > nmt-state/nmt.toml")]
    Config {
        /// Print the built-in defaults as a commented nmt.toml.
        #[arg(long)]
        default: bool,
    },
}

/// `nmt machine …`
#[derive(Subcommand, Debug)]
pub enum MachineCmd {
    /// Register a machine by MAC.
    #[command(after_help = "\
MAC may be written 52:54:00:12:34:56, 52-54-00-12-34-56 or 5254.0012.3456, any case.

Example:
  nmt machine add 52:54:00:12:34:56 --name node001 --group physics --ip 10.0.0.11")]
    Add {
        /// Its MAC address.
        mac: String,
        /// Its name.
        #[arg(long)]
        name: Option<String>,
        /// Its group (default: unknown).
        #[arg(long)]
        group: Option<String>,
        /// Its fixed IPv4 address.
        #[arg(long, value_name = "IPV4")]
        ip: Option<String>,
    },
    /// Import a node table: CSV rows of mac,name,ip,group; all rows or none.
    #[command(after_help = "\
The file may start with a header row naming the columns (mac,name,ip,group in any order);
without one the columns are mac,name,ip,group. Empty fields are allowed, lines starting with
# are comments. Machines already registered are updated. Groups must exist.

Example:
  printf 'mac,name,ip,group\\n52:54:00:00:00:01,node001,10.0.0.1,physics\\n' | nmt machine import -")]
    Import {
        /// The CSV file, or - for standard input.
        file: PathBuf,
    },
    /// Remove machines (their generated files go too); `nmt machine restore` undoes it.
    #[command(after_help = "\
Removing more than one machine lists them and asks \"Proceed? [y/N]\" on a terminal; in a
script it is refused (exit status 3, nothing removed) unless --yes is given. The removal
keeps in the log what each machine was (name, group, address, policy, root device), so
`nmt machine restore` brings it back.

Examples:
  nmt machine rm node042
  nmt machine rm @retired --dry-run    # the events and files, nothing removed
  nmt machine rm @retired --yes        # in a script, once the list is checked")]
    Rm {
        /// The machines (a noderange).
        range: String,
    },
    /// Bring a removed machine back as it was just before its last removal: its name,
    /// group, fixed address, own policy and root device (a new event; the removal stays in
    /// the history).
    #[command(after_help = "\
Refused when the machine is registered now, was never removed, or its old name or address
now belongs to another machine; when its old group is gone, give another with --group.

Examples:
  nmt machine restore 52:54:00:12:34:56
  nmt machine restore node042              # its name before the removal
  nmt machine restore node042 --group lab  # its old group was removed")]
    Restore {
        /// Its MAC, or the name it had (when only one removed machine had it).
        machine: String,
        /// Put it in this group instead of its old one.
        #[arg(long)]
        group: Option<String>,
    },
}

/// `nmt group …`
#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    /// Create a named group.
    #[command(after_help = "Example:\n  nmt group add physics --policy localboot")]
    Add {
        /// Its name (letters, digits, '-', '_', '.').
        group: String,
        /// Its default policy (default: localboot).
        #[arg(long)]
        policy: Option<String>,
    },
    /// Remove a named group; with --force its members move to unknown.
    #[command(
        after_help = "Examples:\n  nmt group rm physics\n  nmt group rm physics --to localboot   # its members boot their disks\n  nmt group rm physics --force         # its members move to unknown\n\nMembers never move to unknown when that would erase their disks (unknown's\npolicy installs or restores an image): then --to is needed. Moving more than one\nmember --to a group that installs or restores an image asks first (--yes in a script)."
    )]
    Rm {
        /// The group.
        group: String,
        /// Move remaining members to `unknown` instead of refusing (refused when unknown's
        /// policy would erase their disks).
        #[arg(long)]
        force: bool,
        /// Move remaining members to this group.
        #[arg(long, value_name = "GROUP")]
        to: Option<String>,
    },
    /// List groups with their policy and size.
    #[command(after_help = "Examples:\n  nmt group list\n  nmt group list --json")]
    List,
}

/// `nmt rootdev …`
#[derive(Subcommand, Debug)]
pub enum RootdevCmd {
    /// List the mapping (the default).
    List,
    /// Map machines to a root device.
    Set {
        /// The machines (a noderange).
        range: String,
        /// The device: /dev/sda1, /dev/nvme0n1p2, UUID=…, PARTUUID=…, LABEL=….
        device: String,
    },
    /// Remove machines' mappings.
    Rm {
        /// The machines (a noderange).
        range: String,
    },
}

/// `nmt image …`
#[derive(Subcommand, Debug)]
pub enum ImageCmd {
    /// Every saved version of every image: where it came from, when, its size and restores.
    #[command(after_help = "\
An image is saved by booting a machine into nmt's imager:
  nmt policy lab01 save-image:lab --once     (then PXE-boot lab01)
Saving to a name that exists makes a new version: `lab` is the newest, `lab@2` an older one.
Restore one onto other machines with `nmt policy @lab restore-image:lab --once`.

Example:
  nmt image list --json")]
    List,
    /// One version: its partition table, partitions, digests, and every machine restored
    /// from it.
    #[command(after_help = "\
Examples:
  nmt image show lab          (the newest version)
  nmt image show lab@2 --json")]
    Show {
        /// NAME (the newest version) or NAME@VERSION.
        image: String,
    },
    /// Check stored images without a machine: every stream's size and SHA-256 against the
    /// manifest, and each partition's image with `zstd -dc | partclone.chkimg`. Exit status 1
    /// when one is damaged.
    #[command(after_help = "\
Examples:
  nmt image check             (every version of every image)
  nmt image check lab@2 --json")]
    Check {
        /// NAME (every version), NAME@VERSION, or nothing for all images.
        image: Option<String>,
    },
    /// Remove a version (NAME@VERSION) or every version (NAME), with its files. Refused while
    /// a machine's or a group's policy names the image.
    #[command(after_help = "\
Examples:
  nmt image rm lab@1
  nmt image rm lab --dry-run")]
    Rm {
        /// NAME or NAME@VERSION.
        image: String,
    },
}

/// The preseed settings of `nmt profile add`.
#[derive(clap::Args, Debug, Default)]
#[command(next_help_heading = "Preseed settings (--answer preseed)")]
pub struct PreseedArgs {
    /// The package mirror the installer and the installed system use.
    #[arg(long, value_name = "http://HOST[:PORT]/DIR")]
    pub mirror: Option<String>,
    /// The suite to install (default: the installer's own).
    #[arg(long, value_name = "SUITE")]
    pub suite: Option<String>,
    /// The URL of the key that signs the mirror (a binary .gpg keyring), for a site's own
    /// signed mirror; trusted by the installer and by apt in the installed system.
    #[arg(long, value_name = "URL")]
    pub mirror_key: Option<String>,
    /// The HTTP proxy ('' for none; no user or password: those would be stored).
    #[arg(long, value_name = "http://HOST:PORT/")]
    pub proxy: Option<String>,
    /// The locale (default en_US.UTF-8).
    #[arg(long)]
    pub locale: Option<String>,
    /// The keyboard layout, an xkb keymap (default us).
    #[arg(long)]
    pub keyboard: Option<String>,
    /// The time zone (default UTC).
    #[arg(long, value_name = "ZONE")]
    pub timezone: Option<String>,
    /// The disk to install onto and put GRUB on (default: the first disk).
    #[arg(long, value_name = "/dev/DISK")]
    pub disk: Option<String>,
    /// The partitioning recipe: atomic (default), home or multi.
    #[arg(long)]
    pub recipe: Option<String>,
    /// The tasksel tasks, comma-separated, or none (default standard,ssh-server).
    #[arg(long, value_name = "TASKS")]
    pub tasks: Option<String>,
    /// Extra packages, comma- or space-separated.
    #[arg(long, value_name = "PACKAGES")]
    pub packages: Option<String>,
    /// A shell command the installer runs at the end, before nmt's report (one line; use
    /// in-target to run it in the installed system). A failure stops the report.
    #[arg(long, value_name = "COMMAND", allow_hyphen_values = true)]
    pub late_command: Option<String>,
    /// One more debconf line, 'OWNER QUESTION TYPE [VALUE]', after nmt's own (repeat).
    #[arg(long = "set", value_name = "LINE", allow_hyphen_values = true)]
    pub set: Vec<String>,
    /// A whole preseed of your own (a file), with {{late_command}} in it; exclusive with
    /// the settings above.
    #[arg(long, value_name = "FILE")]
    pub preseed_template: Option<std::path::PathBuf>,
}

/// `nmt profile …`
#[derive(Subcommand, Debug)]
pub enum ProfileCmd {
    /// Define (or with --replace, redefine) a boot profile.
    #[command(after_help = "\
KIND is install, ltsp, save-image, restore-image, nfsroot or custom. Policies find profiles by
name: install:NAME and custom:NAME by their own name; ltsp, save-image, restore-image and
nfsroot use the profile of that name.

ARGS may use placeholders filled in per machine: {mac} {name} {token} {server} {answer_url}
{report_url} {image} {nfsroot} {profile} {tftp_server}.

Examples:
  nmt profile add ubuntu24 --kind install --answer autoinstall \\
      --kernel ubuntu24/casper/vmlinuz --initrd ubuntu24/casper/initrd \\
      --args 'ip=dhcp autoinstall ds=nocloud-net;s={server}/nocloud/{mac}/'
  nmt profile add memtest --kind custom --kernel memtest86+.bin
  nmt policy node007 custom:memtest

Preseed settings (install profiles with --answer preseed) change what nmt's preseed says;
what is not given keeps nmt's default. A --replace starts from nmt's defaults again, so give
every setting you want each time. For example, a site mirror signed by the site's own key,
German locale, a fixed disk, no tasks, two extra packages and a late command:
  nmt profile add bookworm --kind install --answer preseed \\
      --kernel debian-installer/amd64/linux --initrd debian-installer/amd64/initrd.gz \\
      --args 'auto=true priority=critical url={answer_url} interface=auto' \\
      --mirror http://mirror.example.org/debian --suite bookworm \\
      --mirror-key http://mirror.example.org/site-archive.gpg \\
      --locale de_DE.UTF-8 --keyboard de --timezone Europe/Berlin \\
      --disk /dev/sda --recipe home --tasks none --packages htop,rsync \\
      --late-command 'in-target systemctl enable serial-getty@ttyS0' \\
      --set 'd-i base-installer/initramfs-tools/driver-policy select dep'
The installer reports its root device to nmtd after the late command, and only when it
succeeded. --preseed-template FILE takes a whole preseed of your own instead, stored with the
profile; nmt fills in {{late_command}} (required: its report), {{hostname}}, {{domain}},
{{mac}}, {{password_crypted}} and {{report_url}}. Passwords are never stored: nmt writes the
installer password, crypted, itself.")]
    Add {
        /// Its name.
        name: String,
        /// What it is for.
        #[arg(long)]
        kind: String,
        /// The kernel, relative to the TFTP root (or an http:// URL).
        #[arg(long)]
        kernel: String,
        /// An initrd (repeat for several, in load order).
        #[arg(long)]
        initrd: Vec<String>,
        /// Kernel arguments.
        #[arg(long, default_value = "", allow_hyphen_values = true)]
        args: String,
        /// For install profiles: preseed, kickstart or autoinstall.
        #[arg(long)]
        answer: Option<String>,
        /// For install profiles: enable the installer's network console (SSH into a hung
        /// install; the password is the installer password nmtd shows at first start).
        #[arg(long)]
        network_console: bool,
        #[command(flatten)]
        preseed: Box<PreseedArgs>,
        /// Redefine an existing profile.
        #[arg(long)]
        replace: bool,
    },
    /// Remove a profile nobody uses.
    #[command(after_help = "Example:\n  nmt profile rm memtest")]
    Rm {
        /// Its name.
        name: String,
    },
    /// List profiles.
    #[command(after_help = "Examples:\n  nmt profile list\n  nmt profile list --json")]
    List,
}

/// `nmt installer-password …`
#[derive(Subcommand, Debug)]
pub enum InstallerPasswordCmd {
    /// Show the generated installer password, while it waits to be acknowledged.
    #[command(after_help = "\
A new store's password is generated at random and kept, as plain text, in STATE/installer-password
(mode 0600) until an admin acknowledges it; the event log only ever holds its hash.

Example:
  nmt installer-password show")]
    Show,
    /// Acknowledge the generated installer password: it is no longer kept (only its hash is).
    #[command(after_help = "Example:\n  nmt installer-password show && nmt installer-password ack")]
    Ack,
    /// Set the installer password: read from standard input (or typed at a prompt); only its
    /// SHA-512 crypt hash is recorded.
    #[command(after_help = "\
Examples:
  nmt installer-password set                      # type it at the prompt
  pwgen -s 20 1 | tee /dev/tty | nmt installer-password set")]
    Set,
    /// Generate a new random installer password, record its hash, and print it once.
    #[command(after_help = "Example:\n  nmt installer-password rotate")]
    Rotate,
}

/// `nmt journal …`
#[derive(Subcommand, Debug)]
pub enum JournalCmd {
    /// Write the event log as JSON lines, one event with its envelope per line, then a
    /// trailer line: {"trailer":{"events":N,"sha256":HEX,"filter":{..}}}, the number of
    /// events, the SHA-256 of their lines and the --since/--until/--machine that chose them.
    /// `journal import` checks it, so an export cut short is not taken for a whole one.
    #[command(
        after_help = "Examples:\n  nmt journal export backup.jsonl\n  nmt journal export --machine lab07 --since '2h ago'"
    )]
    Export {
        /// The file to write, atomically, in a directory that exists (default: standard
        /// output).
        file: Option<PathBuf>,
        /// Only events observed at or after this time.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only events observed at or before this time.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Only events about this machine.
        #[arg(long, value_name = "MACHINE")]
        machine: Option<String>,
    },
    /// Rebuild an empty state directory from an export: every event as it was, then every
    /// generated file. A truncated or corrupted export is refused with its line number; an
    /// export without its trailer line (cut at a line boundary, or written by an nmt from
    /// before trailers), or a filtered one, is refused unless --partial is given.
    #[command(
        after_help = "Examples:\n  nmt --state /var/lib/nmt journal import /backup/nmt-journal.jsonl\n  nmt --state /var/lib/nmt journal import --partial old-nmt-journal.jsonl"
    )]
    Import {
        /// The export (JSON lines), or - for standard input.
        file: PathBuf,
        /// Import an export that may hold only the start of the log (no trailer, or an
        /// --until export): its events must still run gap-free from 1.
        #[arg(long)]
        partial: bool,
    },
}

/// `nmt replay …`
#[derive(Subcommand, Debug)]
pub enum ReplayCmd {
    /// Append the events of archived DHCP/TFTP logs (plain, rotated `.1`, gzip `.gz`; any mix
    /// of servers and hosts), merged in time order. Lines already read, by live ingest or an
    /// earlier replay, are skipped: replaying twice adds nothing.
    #[command(after_help = "\
RFC 3164 syslog stamps carry no year: it is inferred from each file's modification time and
the order of rotation (December lines before a January rotation belong to the year before);
--year sets the year of each rotation set's oldest line instead.

Examples:
  nmt replay logs /var/log/syslog.7.gz /var/log/syslog.6.gz … /var/log/syslog
  nmt replay logs archive/*/dhcpd.log* --year 2025 --strict")]
    Logs {
        /// The log files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The year of the first RFC 3164 line of each rotation set (default: inferred).
        #[arg(long, value_parser = log_year)]
        year: Option<i16>,
        /// Exit 1 when lines were not recognised (they are counted and skipped either way).
        #[arg(long)]
        strict: bool,
    },

    /// Append what DHCP servers' leases files tell: ISC dhcpd's `dhcpd.leases` (the last
    /// block for each address wins: its hardware ethernet address, start and client host
    /// name), dnsmasq's leases file, and Kea's memfile `kea-leases4.csv` (the last line for
    /// each address wins). This brings in a pool that booted before nmt was installed.
    /// Replaying a file again adds nothing.
    #[command(after_help = "\
A lease is recorded as a DHCP event of kind `lease` at its start (dnsmasq's file does not say
when a lease started: the file's modification time is used), unless nmt has seen its machine
since. Leases of multicast, broadcast or all-zero addresses are skipped.

Kea's lease file can also be followed like a log (nmtd --log /var/lib/kea/kea-leases4.csv):
each line Kea appends is a lease.

Examples:
  nmt replay leases /var/lib/dhcp/dhcpd.leases
  nmt replay leases /var/lib/misc/dnsmasq.leases --dry-run
  nmt replay leases /var/lib/kea/kea-leases4.csv.2 /var/lib/kea/kea-leases4.csv")]
    Leases {
        /// The leases files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// `--year`: a year a DHCP log line can have been written in, 1970 to 9999.
fn log_year(s: &str) -> Result<i16, String> {
    match s.trim().parse::<i16>() {
        Ok(y) if (1970..=9999).contains(&y) => Ok(y),
        _ => Err(format!(
            "{s:?} is not a year these logs can be from; give the year their oldest line was \
             written, between 1970 and 9999 (e.g. --year 2025), or leave --year out to infer it"
        )),
    }
}

/// `nmt schedule …`
#[derive(Subcommand, Debug)]
pub enum ScheduleCmd {
    /// Define a schedule: nmtd runs ACTION (any nmt command that changes machines or policies)
    /// at the times CRON names, as you, with your rights.
    #[command(after_help = "\
CRON is five fields, MIN HOUR DOM MON DOW, read in --tz (default: your time zone):
  '0 2 * * *'      02:00 every day          '0 18 * * 1-5'   18:00 Monday to Friday
  '30 6 1 * *'     06:30 on the 1st         '@daily'         00:00 every day
A time that does not exist on the night clocks spring forward runs once, right after the
change; a time that happens twice when they fall back runs once, the first time.

Only nmtd runs schedules. A run is recorded in the log with the events its command made, as
`schedule NAME (set by YOU)`. When nmtd was down at a time, the run is made late if it is at
most --grace behind (default 30m), else it is recorded as missed and not run.

With --expect, each run is checked when that time is up: for every machine the command
targeted, done (booted its entry, and its install, restore or save reported success), failed,
booted but never reported, or never booted. `nmt schedule runs NAME` lists them, and
`nmt history MACHINE` shows each machine's outcome. A --once policy still pending from an
earlier run (the machine never booted) is not set again.

Examples:
  nmt schedule add lab-nightly --cron '0 2 * * *' --expect 45m -- policy @lab restore-image:lab --once
  nmt schedule add ltsp-evening --cron '0 18 * * 1-5' --tz Europe/Berlin -- policy @physics ltsp
  nmt schedule add ltsp-morning --cron '0 7 * * 1-5' --tz Europe/Berlin -- policy @physics localboot

A command that makes machines erase their disks (install, restore-image) lists the machines
it would reach if it ran now and asks first, as the command itself would; a script passes
--yes.")]
    Add {
        /// Its name (letters, digits, '-', '_', '.').
        name: String,
        /// When: MIN HOUR DOM MON DOW (quote it).
        #[arg(long, value_name = "CRON")]
        cron: String,
        /// The IANA time zone CRON is read in (Europe/Berlin, America/New_York, UTC; default:
        /// yours).
        #[arg(long, value_name = "ZONE")]
        tz: Option<String>,
        /// Check each run's outcome this long after it (45m, 2h, 1h30m).
        #[arg(long, value_name = "DURATION")]
        expect: Option<String>,
        /// Run at most this late when nmtd was down at the time (default 30m).
        #[arg(long, value_name = "DURATION")]
        grace: Option<String>,
        /// Redefine the schedule of that name (its past runs are kept).
        #[arg(long)]
        replace: bool,
        /// The nmt command to run, after `--` (e.g. -- policy @lab restore-image:lab --once).
        #[arg(last = true, required = true, value_name = "ACTION")]
        action: Vec<String>,
    },
    /// Every schedule: its pattern, zone, next run, command, owner and last run.
    #[command(after_help = "Example:\n  nmt schedule list --json")]
    List,
    /// Remove a schedule (its past runs stay in the log).
    Rm {
        /// The schedule.
        name: String,
    },
    /// Pause a schedule: its times pass without a run, and are not recorded as missed.
    Pause {
        /// The schedule.
        name: String,
    },
    /// Resume a paused schedule, from now on.
    Resume {
        /// The schedule.
        name: String,
    },
    /// A schedule's runs, newest first, with their outcome counts and the machines that were
    /// not done (all schedules' without NAME).
    #[command(after_help = "\
Outcomes: done, failed, no-report (booted but never reported), never-booted (no DHCP or
boot-file fetch seen). A machine whose --once policy is still pending says so.

Examples:
  nmt schedule runs lab-nightly
  nmt schedule runs --json      (for monitoring: every schedule)")]
    Runs {
        /// The schedule (none: all).
        name: Option<String>,
    },
}

/// A power action.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum PowerArg {
    /// Switch on.
    On,
    /// Switch off (hard).
    Off,
    /// Off, then on.
    Cycle,
    /// Hard reset.
    Reset,
    /// Read the power state.
    Status,
}

/// `nmt bmc …`
#[derive(Subcommand, Debug)]
pub enum BmcCmd {
    #[command(group(ArgGroup::new("how").required(true)))]
    /// Set how machines' power is reached: one machine's own BMC, or a group's (`@lab`),
    /// which its members without their own use.
    #[command(after_help = "\
The password is read from a file only you can read (its first line), never from the command
line. nmtd keeps it in its secrets file (mode 0600, [paths] secrets); the event log records
only that a password was set or changed, and by whom.

A group's host or URL may hold {name} (the machine's name), {mac} (dashes) and {ip}.

Examples:
  nmt bmc set node042 --ipmi 10.1.0.42 --user admin --password-file ~/.bmc-pass
  nmt bmc set @physics --ipmi '{name}-bmc' --user admin --password-file ~/.bmc-pass
  nmt bmc set @hpc --redfish 'https://{name}-bmc' --user root --password-file F --cacert ca.pem
  nmt bmc set @lab --wol --interface br0      (power on only)
  nmt bmc show @lab")]
    Set {
        /// A noderange (each machine's own), or one @group.
        range: String,
        /// IPMI v2.0 over LAN (lanplus): the BMC's host (port 623 unless given).
        #[arg(long, value_name = "HOST[:PORT]", group = "how")]
        ipmi: Option<String>,
        /// Redfish: the service's URL (https://bmc) or a system's
        /// (https://bmc/redfish/v1/Systems/1).
        #[arg(long, value_name = "URL", group = "how")]
        redfish: Option<String>,
        /// Wake-on-LAN: a magic packet to the machine's MAC (power on only).
        #[arg(long, group = "how")]
        wol: bool,
        /// The BMC user.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// A file holding the BMC password on its first line (mode 0600).
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Redfish: trust only the certificates in this PEM file (the BMC's own, or your CA).
        #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
        cacert: Option<PathBuf>,
        /// Redfish: do not check the certificate (a lab; shown wherever the setting is).
        #[arg(long)]
        insecure: bool,
        /// Wake-on-LAN: the interface to broadcast on.
        #[arg(long, value_name = "IF")]
        interface: Option<String>,
        /// Wake-on-LAN: a subnet's directed broadcast address instead (10.0.9.255).
        #[arg(long, value_name = "ADDR")]
        broadcast: Option<std::net::Ipv4Addr>,
    },
    /// Each machine's BMC (its own or its group's), whether a password is kept, and its last
    /// power action.
    #[command(after_help = "Example:\n  nmt bmc show @lab --json")]
    Show {
        /// A noderange.
        range: String,
    },
    /// Remove BMC settings (and their passwords): machines', or one @group's.
    Rm {
        /// A noderange, or one @group.
        range: String,
    },
}
