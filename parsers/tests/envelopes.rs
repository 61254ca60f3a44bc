//! Properties of the envelope scanner, on generated input with fixed seeds
//! (so CI runs the same cases every time):
//!
//! * wrapping any recognised message in any supported envelope gives the
//!   same record, program and pid, and the stamp the envelope wrote;
//! * no input panics: random bytes and mutated corpus lines through
//!   `parse_line` under every program tag (so through every message parser)
//!   and `parse_journal_json`. The number of executions is printed.

use nmt_parsers::{Stamp, parse_journal_json, parse_line};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

/// (program, message) pairs every server prints, one of each parser's shapes.
const MESSAGES: &[(&str, &str)] = &[
    (
        "dhcpd",
        "DHCPDISCOVER from 08:00:27:4f:53:22 (pc-1) via enp0s8",
    ),
    (
        "dhcpd",
        "DHCPACK on 10.0.0.100 to 08:00:27:4f:53:22 via enp0s8",
    ),
    (
        "dhcpd",
        "DHCPACK to 10.0.0.100 (08:00:27:4f:53:22) via enp0s8",
    ),
    (
        "dhcpd",
        "BOOTREPLY for 192.168.0.21 to taz (08:00:20:94:77:a4) via eth0",
    ),
    (
        "dnsmasq-dhcp",
        "3173129068 DHCPACK(br-lan) 10.213.0.57 52:54:00:aa:bb:01 lab07",
    ),
    (
        "dnsmasq-dhcp",
        "DHCPREQUEST(br-lan) 192.168.33.218 2a:85:8f:ff:be:e3",
    ),
    (
        "dnsmasq-dhcp",
        "658188 DHCPSOLICIT(br0) 00:03:00:01:9e:14:a2:d9:ef:ef",
    ),
    (
        "dnsmasq-dhcp",
        "3173129068 vendor class: PXEClient:Arch:00007:UNDI:003016",
    ),
    ("dnsmasq-tftp", "sent /srv/tftp/pxelinux.0 to 10.213.0.57"),
    ("dnsmasq", "DHCPACK(br0) 10.0.0.5 52:54:00:12:34:56 pc"),
    (
        "kea-dhcp4",
        "INFO  [kea-dhcp4.leases/617.1] DHCP4_LEASE_ALLOC [hwtype=1 08:00:27:d1:b8:5c], cid=[no info], tid=0xa9f404c6: lease 192.168.101.10 has been allocated for 4000 seconds",
    ),
    (
        "kea-dhcp6",
        "INFO  [kea-dhcp6.leases/1.2] DHCP6_LEASE_ALLOC duid=[00:03:00:01:aa:bb:cc:dd:ee:ff], [no hwaddr info], tid=0x1: lease for address 2001:db8::5 and iaid=1 has been allocated for 60 seconds",
    ),
    ("in.tftpd", "RRQ from 10.0.1.100 filename pxelinux.0"),
    ("atftpd", "Serving pxelinux.0 to 10.0.0.100:2070"),
    ("tftpd", "tftpd: trying to get file: pxelinux.0"),
    (
        "tftpd",
        "providence: read request for //pxelinux.0: success",
    ),
];

const HOSTS: &[&str] = &["boot1", "slinky", "OpenWrt", "gw-2.lab.example", "UDMPRO"];
const EN: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DE: [&str; 12] = [
    "Jan", "Feb", "Mär", "Apr", "Mai", "Jun", "Jul", "Aug", "Sep", "Okt", "Nov", "Dez",
];
const FR: [&str; 12] = [
    "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.",
    "déc.",
];
const ES: [&str; 12] = [
    "ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic",
];
const RU: [&str; 12] = [
    "янв", "фев", "мар", "апр", "мая", "июн", "июл", "авг", "сен", "окт", "ноя", "дек",
];
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A random time, written in one of the stamp shapes nmt reads, and the
/// stamp it must read.
fn random_stamp(r: &mut Rng) -> (String, Option<Stamp>) {
    let (month, day) = (1 + r.below(12) as u8, 1 + r.below(28) as u8);
    let (hour, minute, second) = (r.below(24) as u8, r.below(60) as u8, r.below(60) as u8);
    let year = 2000 + r.below(40) as i16;
    let hms = format!("{hour:02}:{minute:02}:{second:02}");
    let no_year = |nanos| Stamp::NoYear {
        month,
        day,
        hour,
        minute,
        second,
        nanos,
    };
    let full = |nanos, offset_seconds| Stamp::Full {
        year,
        month,
        day,
        hour,
        minute,
        second,
        nanos,
        offset_seconds,
    };
    let m = usize::from(month - 1);
    match r.below(11) {
        0 => (format!("{} {day:2} {hms}", EN[m]), Some(no_year(0))),
        1 => (
            format!("{} {day:02} {hms}.123456", EN[m]),
            Some(no_year(123_456_000)),
        ),
        2 => (
            format!("{} {} {day:2} {hms} {year}", r.pick(&WEEKDAYS), EN[m]),
            Some(full(0, None)),
        ),
        3 => (
            format!("{year}-{month:02}-{day:02}T{hms}.123456789Z"),
            Some(full(123_456_789, Some(0))),
        ),
        4 => (
            format!("{year}-{month:02}-{day:02}T{hms}+0100"),
            Some(full(0, Some(3600))),
        ),
        5 => (
            format!("{year}-{month:02}-{day:02} {hms}"),
            Some(full(0, None)),
        ),
        6 => {
            let names = [&DE, &FR, &ES, &RU][r.below(4)];
            (format!("{} {day:02} {hms}", names[m]), Some(no_year(0)))
        }
        7 => (format!("{month}月 {day:2} {hms}"), Some(no_year(0))),
        8 => (format!("{month}월 {day:2} {hms}"), Some(no_year(0))),
        9 => (
            format!("[{year}-{month:02}-{day:02} {hms}]"),
            Some(full(0, None)),
        ),
        _ => (String::new(), None),
    }
}

/// A random envelope around `program[pid]:` and the stamp it must give.
fn wrap(r: &mut Rng, program: &str, message: &str) -> (String, Option<Stamp>, Option<u32>) {
    let (stamp_text, stamp) = random_stamp(r);
    let sep = if r.below(5) == 0 { "\t" } else { " " };
    let mut fields: Vec<String> = Vec::new();
    if r.below(4) == 0 {
        fields.push(format!("<{}>", r.below(192)));
    }
    if !stamp_text.is_empty() {
        fields.push(stamp_text);
    }
    if r.below(3) == 0 {
        fields.push(
            r.pick(&["daemon.info", "Local7.Info", "daemon.notice"])
                .to_string(),
        );
    }
    if !fields.is_empty() && r.below(4) != 0 {
        fields.push(r.pick(HOSTS).to_string());
    }
    if r.below(4) == 0 {
        fields.push(format!("192.168.{}.{}", r.below(256), 1 + r.below(254)));
    }
    let pid = (r.below(3) != 0).then(|| r.below(100_000) as u32);
    let tag = match pid {
        Some(p) => format!("{program}[{p}]:"),
        None => format!("{program}:"),
    };
    fields.push(tag);
    let mut line = fields.join(sep);
    line.push(' ');
    line.push_str(message);
    (line, stamp, pid)
}

#[test]
fn any_message_in_any_envelope_reads_the_same() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut runs = 0;
    for &(program, message) in MESSAGES {
        let bare = format!("{program}: {message}");
        let reference =
            parse_line(bare.as_bytes()).unwrap_or_else(|e| panic!("{program}: {message}: {e}"));
        for _ in 0..400 {
            let (line, stamp, pid) = wrap(&mut r, program, message);
            let got = parse_line(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e}"));
            assert_eq!(got.record, reference.record, "{line:?}");
            assert_eq!(got.program, Some(program.as_bytes()), "{line:?}");
            assert_eq!(got.pid, pid, "{line:?}");
            assert_eq!(got.stamp, stamp, "{line:?}");
            runs += 1;
        }
    }
    println!("{runs} wrapped messages read the same");
}

/// Corpus lines to mutate: the fixtures and the messages above.
fn seeds() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = MESSAGES
        .iter()
        .map(|(p, m)| format!("Nov 20 02:05:11 boot1 {p}[1]: {m}").into_bytes())
        .collect();
    for name in ["corpus.tsv", "lookalikes.tsv", "parsers-pxe-boot.log"] {
        let path = format!("{}/../fixtures/logs/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).expect("fixture");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let line = line.rsplit_once('\t').map_or(line, |(_, l)| l);
            out.push(line.as_bytes().to_vec());
        }
    }
    out.push(br#"{"MESSAGE":"DHCPACK on 10.0.0.5 to 52:54:00:12:34:56 via eth0","SYSLOG_IDENTIFIER":"dhcpd","__REALTIME_TIMESTAMP":"1","__CURSOR":"c"}"#.to_vec());
    out
}

const TAGS: &[&[u8]] = &[
    b"",
    b"dhcpd: ",
    b"dnsmasq-dhcp[1]: ",
    b"dnsmasq-tftp: ",
    b"kea-dhcp4: ",
    b"kea-dhcp6: ",
    b"in.tftpd: ",
    b"atftpd: ",
    b"tftpd: ",
];

const EXECUTIONS: usize = 200_000;

#[test]
fn fuzz_random_and_mutated_lines_never_panic() {
    let seeds = seeds();
    let mut r = Rng(0x2545_f491_4f6c_dd1d);
    let interesting = b" :[]()<>.-\t\"\\0123456789abcdefDHCPACK\xe6\x9c\x88\xc3\xa9\xff\x00";
    let mut accepted = 0usize;
    let mut line = Vec::with_capacity(1024);
    for i in 0..EXECUTIONS {
        line.clear();
        if i % 4 == 0 {
            // Random bytes, under a random tag.
            let tag: &[u8] = TAGS[r.below(TAGS.len())];
            line.extend_from_slice(tag);
            for _ in 0..r.below(200) {
                line.push(if r.below(2) == 0 {
                    r.next() as u8
                } else {
                    interesting[r.below(interesting.len())]
                });
            }
        } else {
            line.extend_from_slice(r.pick(&seeds).as_slice());
            for _ in 0..1 + r.below(4) {
                let len = line.len().max(1);
                match r.below(6) {
                    0 => {
                        let at = r.below(len);
                        if at < line.len() {
                            line[at] = r.next() as u8;
                        }
                    }
                    1 => line.insert(r.below(len), interesting[r.below(interesting.len())]),
                    2 => line.truncate(r.below(len)),
                    3 if !line.is_empty() => {
                        let at = r.below(line.len());
                        line.remove(at);
                    }
                    4 => {
                        // Splice part of another seed in.
                        let other = r.pick(&seeds);
                        let from = r.below(other.len().max(1));
                        let at = r.below(len).min(line.len());
                        let tail = line.split_off(at);
                        line.extend_from_slice(&other[from.min(other.len())..]);
                        line.extend_from_slice(&tail);
                    }
                    _ => {
                        let at = r.below(len).min(line.len());
                        let tag = r.pick(TAGS);
                        line.splice(at..at, tag.iter().copied());
                    }
                }
            }
        }
        if parse_line(&line).is_ok() {
            accepted += 1;
        }
        let _ = parse_journal_json(&line);
    }
    println!("fuzz: {EXECUTIONS} executions without a panic ({accepted} lines accepted)");
    assert!(
        accepted > EXECUTIONS / 10,
        "mutations keep some lines readable"
    );
}
