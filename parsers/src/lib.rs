//! Parsers for nmt: DHCP/TFTP log lines and the noderange syntax.
//!
//! Everything here is pure: text in, typed values or a descriptive error
//! out, with no I/O. The log-line parsers (DHCP and TFTP lines in their
//! syslog envelopes) will live here too; today the crate provides the
//! noderange parser, which turns what an admin types on the command line
//! (`node[001-300]`, `rack[1-2]n[01-04]`, `52:54:00:aa:bb:01`, `@web`, ...)
//! into a [`NodeRange`]. See [`parse_noderange`].

mod noderange;

pub use noderange::{NodeRange, NodeRangeError, RangeItem, parse_noderange};
