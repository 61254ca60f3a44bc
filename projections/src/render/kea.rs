//! Kea's DHCPv4 host reservations: the value of a `"reservations"` list, one object per
//! DHCP-listed machine in MAC order (its MAC, its fixed address when it has one, its host
//! name, and the next server). The admin includes it from kea-dhcp4.conf with
//! `"reservations": <?include "/path/to/this/file"?>`; nmt never edits that file. The boot
//! file is chosen by client classes in the admin's file, by client architecture and user
//! class (the README gives them), so only DHCP facts go in and policies never reload Kea.
//!
//! Kea reads the file with its own JSON lexer, which takes `#` comments: the file opens with
//! one that carries nmt's marker. Every value is either nmt's own (a MAC, an IPv4 address)
//! or a name [`safe_name`] passed, so nothing in it needs escaping; it is written with
//! serde_json all the same.

use std::fmt::Write as _;

use serde_json::Value;

use super::{MARKER, RenderConfig, safe_name};
use crate::State;

/// The whole file.
pub(super) fn render(state: &State, cfg: &RenderConfig) -> Vec<u8> {
    let listed: Vec<_> = state.machines().filter(|m| m.dhcp_listed()).collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# {MARKER}: Kea DHCPv4 host reservations for the {} machine(s) nmt lists",
        listed.len()
    );
    s.push_str(
        "# Include it from kea-dhcp4.conf as the value of a reservations list:\n\
         #   \"reservations\": <?include \"/path/to/this/file\"?>\n\
         # Do not edit: nmt rewrites it; use `nmt machine add`, `nmt name` and `nmt assign`.\n",
    );
    // One reservation a line, its keys in a fixed order: a diff of two versions shows the
    // machines that changed.
    let lines: Vec<String> = listed
        .iter()
        .map(|m| {
            let mut fields = vec![("hw-address", m.mac.to_string())];
            fields.extend(m.ip.map(|ip| ("ip-address", ip.to_string())));
            fields.extend(safe_name(m).map(|n| ("hostname", n.to_string())));
            fields.extend(cfg.next_server.map(|ns| ("next-server", ns.to_string())));
            let body: Vec<String> = fields
                .into_iter()
                .map(|(k, v)| format!("\"{k}\": {}", Value::String(v)))
                .collect();
            format!("{{ {} }}", body.join(", "))
        })
        .collect();
    if lines.is_empty() {
        s.push_str("[]\n");
    } else {
        let _ = writeln!(s, "[\n  {}\n]", lines.join(",\n  "));
    }
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;
    use crate::render::tests::{fixture, text_of};
    use crate::render::{Target, kea_reservations};

    const KEA: &str = "/usr/sbin/kea-dhcp4";

    /// The JSON value of the file: Kea's `#` comments taken out.
    fn json_of(text: &str) -> Value {
        let body: String = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}:\n{text}"))
    }

    /// A kea-dhcp4.conf as the README lays it out: the client classes that choose the boot
    /// file, one subnet with a pool, and the reservations included at the global level.
    pub(crate) fn kea_conf(dir: &Path, reservations: &Path) -> String {
        format!(
            r#"// a site's kea-dhcp4.conf
{{ "Dhcp4": {{
  "interfaces-config": {{ "interfaces": [] }},
  "control-socket": {{ "socket-type": "unix", "socket-name": "{dir}/kea4-ctrl-socket" }},
  "lease-database": {{ "type": "memfile", "persist": true, "name": "{dir}/kea-leases4.csv" }},
  "authoritative": true,
  "reservations-global": true,
  "reservations-in-subnet": true,
  "client-classes": [
    {{ "name": "nmt-ipxe", "test": "member('KNOWN') and substring(option[77].hex,0,4) == 'iPXE'",
       "boot-file-name": "ipxe/boot.ipxe" }},
    {{ "name": "nmt-uefi-http", "test": "option[93].hex == 0x0010 and not member('nmt-ipxe')",
       "boot-file-name": "http://10.9.0.1/tftp/grub/grubnetx64.efi",
       "option-data": [ {{ "name": "vendor-class-identifier", "data": "HTTPClient" }} ] }},
    {{ "name": "nmt-uefi", "test": "(option[93].hex == 0x0007 or option[93].hex == 0x0009) and not member('nmt-ipxe')",
       "boot-file-name": "grub/grubnetx64.efi" }},
    {{ "name": "nmt-bios", "test": "option[93].hex == 0x0000 and not member('nmt-ipxe')",
       "boot-file-name": "pxelinux.0" }}
  ],
  "subnet4": [ {{ "id": 1, "subnet": "10.9.0.0/24",
                 "pools": [ {{ "pool": "10.9.0.100 - 10.9.0.200" }} ],
                 "next-server": "10.9.0.1" }} ],
  "reservations": <?include "{res}"?>,
  "loggers": [ {{ "name": "kea-dhcp4", "output_options": [ {{ "output": "stderr" }} ],
                 "severity": "WARN" }} ]
}} }}
"#,
            dir = dir.display(),
            res = reservations.display()
        )
    }

    /// `kea-dhcp4 -t` on [`kea_conf`] with `reservations` as the included file.
    fn kea_check(dir: &Path, reservations: &[u8]) -> (bool, String) {
        assert!(
            Path::new(KEA).exists(),
            "{KEA} is missing: install Kea (Debian: apt-get install kea-dhcp4-server) to run \
             this test"
        );
        let res = dir.join("kea-nmt.json");
        std::fs::write(&res, reservations).unwrap();
        let conf = dir.join("kea-dhcp4.conf");
        std::fs::write(&conf, kea_conf(dir, &res)).unwrap();
        let out = Command::new(KEA)
            .arg("-t")
            .arg(&conf)
            .output()
            .unwrap_or_else(|e| panic!("running {KEA}: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    #[test]
    fn one_reservation_per_listed_machine_with_what_nmt_knows() {
        let (st, cfg) = fixture();
        let f = kea_reservations(&st, &cfg);
        assert_eq!(f.target, Target::KeaReservations);
        let text = text_of(&f);
        assert!(text.starts_with(&format!("# {MARKER}")), "{text}");
        let v = json_of(&text);
        let list = v.as_array().unwrap();
        let listed: Vec<_> = st.machines().filter(|m| m.dhcp_listed()).collect();
        assert!(listed.len() > 10, "the fixture lists machines");
        assert_eq!(list.len(), listed.len(), "{text}");
        for (r, m) in list.iter().zip(&listed) {
            assert_eq!(r["hw-address"], m.mac.to_string());
            assert_eq!(r["next-server"], "10.9.0.1");
            match m.ip {
                Some(ip) => assert_eq!(r["ip-address"], ip.to_string()),
                None => assert!(r.get("ip-address").is_none(), "{r}"),
            }
            match safe_name(m) {
                Some(n) => assert_eq!(r["hostname"], n),
                None => assert!(r.get("hostname").is_none(), "{r}"),
            }
            // Boot files come from the admin's client classes, never from here.
            assert!(r.get("boot-file-name").is_none(), "{r}");
        }
        // node01: registered, named, addressed.
        assert!(
            text.contains(
                r#"{ "hw-address": "52:54:00:00:00:01", "ip-address": "10.9.0.11", "hostname": "node01", "next-server": "10.9.0.1" },"#
            ),
            "{text}"
        );
        // Only discovered: not listed.
        assert!(!text.contains("52:54:00:00:00:05"), "{text}");
    }

    #[test]
    fn no_next_server_leaves_it_to_the_admin_and_an_empty_pool_is_an_empty_list() {
        let (st, mut cfg) = fixture();
        cfg.next_server = None;
        let text = text_of(&kea_reservations(&st, &cfg));
        assert!(!text.contains("next-server"), "{text}");
        let text = text_of(&kea_reservations(&State::new(), &cfg));
        assert_eq!(json_of(&text), Value::Array(Vec::new()));
    }

    #[test]
    fn real_kea_accepts_it() {
        let dir = tempfile::tempdir().unwrap();
        let (st, cfg) = fixture();
        let f = kea_reservations(&st, &cfg);
        let (ok, out) = kea_check(dir.path(), &f.bytes);
        assert!(
            ok,
            "kea-dhcp4 -t refused the reservations:\n{out}\n---\n{}",
            text_of(&f)
        );
        let (ok, out) = kea_check(dir.path(), &kea_reservations(&State::new(), &cfg).bytes);
        assert!(ok, "{out}");

        // The check can fail: two reservations of one address are refused.
        let broken = text_of(&f).replace("10.9.0.12", "10.9.0.11");
        assert_ne!(broken, text_of(&f));
        let (ok, out) = kea_check(dir.path(), broken.as_bytes());
        assert!(
            !ok,
            "kea-dhcp4 -t accepted a duplicate address: the test checks nothing\n{out}"
        );
    }
}
