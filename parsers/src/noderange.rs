//! The noderange syntax: how an admin names a set of machines on the
//! command line, in the style of xCAT and pdsh.
//!
//! A noderange is a comma list of items; whitespace around an item is
//! ignored. An item is one of:
//!
//! * a literal word such as `node042`, `lab-7.example.org` or a MAC in any
//!   spelling (`52:54:00:aa:bb:01`, `52-54-00-AA-BB-01`, `5254.00aa.bb01`).
//!   Words use ASCII letters, digits, `:`, `-`, `.` and `_`. The parser does
//!   not decide whether a word is a MAC or a name; the caller does.
//! * a bracket pattern such as `node[001-300]`, `node[1-5,9]`,
//!   `rack[1-2]n[01-04]` or `node[1-3].cluster`. Several bracket groups give
//!   the cartesian product, rightmost varying fastest. When a range's start
//!   bound is written with a leading zero, every number it generates is
//!   zero-padded to the width of that start bound.
//! * `@name`, every member of a group.
//!
//! Commas inside brackets belong to the bracket: `node[1-5,9],other` is two
//! items.

use nom::{
    IResult, Offset, Parser,
    branch::alt,
    bytes::complete::take_while1,
    character::complete::{char, digit1, multispace0},
    combinator::{consumed, cut, eof, opt},
    error::{ErrorKind, ParseError},
    multi::{many1, separated_list1},
    sequence::{preceded, terminated},
};

/// The most names one noderange may expand to.
const MAX_NAMES: u64 = 100_000;

const HINT: &str = "a noderange is a comma list of names, MACs, name[1-10] ranges and @group";

/// A parsed noderange: its items in the order they were written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRange {
    pub items: Vec<RangeItem>,
}

/// One comma-separated item of a noderange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeItem {
    /// A single word: a MAC or a machine name (the caller decides).
    Literal(String),
    /// A bracket pattern already expanded to its words, in order.
    Expanded { pattern: String, words: Vec<String> },
    /// `@name`: every member of a group.
    Group(String),
}

/// Why a noderange was rejected. Columns count characters from 1.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeRangeError {
    #[error("empty noderange; {HINT}")]
    Empty,
    #[error(
        "empty item at column {column} in {input:?}; remove the extra comma or put a name there"
    )]
    EmptyItem { column: usize, input: String },
    #[error("unexpected {found:?} at column {column} in {input:?}; {HINT}")]
    UnexpectedChar {
        found: char,
        column: usize,
        input: String,
    },
    #[error("unexpected end of input at column {column} in {input:?}; {HINT}")]
    UnexpectedEnd { column: usize, input: String },
    #[error("'[' at column {column} in {input:?} is never closed; a range looks like name[1-10]")]
    UnclosedBracket { column: usize, input: String },
    #[error(
        "'@' at column {column} in {input:?} has no group name after it; \
         group names use letters, digits, '-', '_' and '.'"
    )]
    EmptyGroupName { column: usize, input: String },
    #[error(
        "reversed range {start}-{end} at column {column} in {input:?}; \
         write the smaller bound first, as in [{end}-{start}]"
    )]
    ReversedRange {
        start: String,
        end: String,
        column: usize,
        input: String,
    },
    #[error("number {number} at column {column} in {input:?} is too large")]
    NumberTooLarge {
        number: String,
        column: usize,
        input: String,
    },
    #[error(
        "{pattern:?} at column {column} in {input:?} would expand the noderange to more than \
         {limit} names; split it into smaller ranges"
    )]
    TooLarge {
        pattern: String,
        column: usize,
        limit: u64,
        input: String,
    },
}

impl NodeRange {
    /// True when the whole range is exactly one `@group` item.
    pub fn as_single_group(&self) -> Option<&str> {
        match self.items.as_slice() {
            [RangeItem::Group(name)] => Some(name),
            _ => None,
        }
    }

    /// The groups, when every item of the range is an `@group` (`@physics,@lab`), in the
    /// order written, without repeats.
    pub fn as_groups(&self) -> Option<Vec<&str>> {
        let mut out: Vec<&str> = Vec::new();
        for item in &self.items {
            match item {
                RangeItem::Group(name) if out.contains(&name.as_str()) => {}
                RangeItem::Group(name) => out.push(name),
                _ => return None,
            }
        }
        (!out.is_empty()).then_some(out)
    }
}

/// Parses a noderange and expands its bracket patterns.
///
/// Literals and groups are returned as written; resolving them against the
/// inventory is the caller's job. Duplicates are kept.
///
/// ```
/// use nmt_parsers::{RangeItem, parse_noderange};
///
/// let range = parse_noderange("n[08-10], 52:54:00:aa:bb:01, @web").unwrap();
/// assert_eq!(
///     range.items,
///     [
///         RangeItem::Expanded {
///             pattern: "n[08-10]".into(),
///             words: vec!["n08".into(), "n09".into(), "n10".into()],
///         },
///         RangeItem::Literal("52:54:00:aa:bb:01".into()),
///         RangeItem::Group("web".into()),
///     ]
/// );
/// ```
pub fn parse_noderange(input: &str) -> Result<NodeRange, NodeRangeError> {
    let asts = match terminated(separated_list1(char(','), item), eof).parse(input) {
        Ok((_, asts)) => asts,
        Err(nom::Err::Error(stop) | nom::Err::Failure(stop)) => {
            return Err(syntax_error(input, stop));
        }
        Err(nom::Err::Incomplete(_)) => {
            return Err(syntax_error(
                input,
                Stop::new(&input[input.len()..], Why::Unexpected),
            ));
        }
    };
    let mut total = 0;
    let items = asts
        .into_iter()
        .map(|ast| expand(input, ast, &mut total))
        .collect::<Result<_, _>>()?;
    Ok(NodeRange { items })
}

// ---- grammar ----

/// Where and why the grammar stopped; `at` is the rest of the input.
#[derive(Debug)]
struct Stop<'a> {
    at: &'a str,
    why: Why,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    Unexpected,
    EmptyItem,
    Unclosed,
    EmptyGroupName,
}

impl<'a> Stop<'a> {
    fn new(at: &'a str, why: Why) -> Self {
        Stop { at, why }
    }
}

impl<'a> ParseError<&'a str> for Stop<'a> {
    fn from_error_kind(input: &'a str, _: ErrorKind) -> Self {
        Stop::new(input, Why::Unexpected)
    }

    fn append(_: &'a str, _: ErrorKind, other: Self) -> Self {
        other
    }
}

type Res<'a, T> = IResult<&'a str, T, Stop<'a>>;

fn failure<T>(at: &str, why: Why) -> Res<'_, T> {
    Err(nom::Err::Failure(Stop::new(at, why)))
}

/// One item as written, before expansion.
enum Ast<'a> {
    Group(&'a str),
    Word { text: &'a str, parts: Vec<Part<'a>> },
}

enum Part<'a> {
    Text(&'a str),
    /// The `start` or `start-end` entries of one `[...]`.
    Bracket(Vec<(&'a str, Option<&'a str>)>),
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '.' | '_')
}

fn is_group_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// `item = space* (group | word) space*`
fn item(i: &str) -> Res<'_, Ast<'_>> {
    let (i, _) = multispace0(i)?;
    if i.is_empty() || i.starts_with(',') {
        return failure(i, Why::EmptyItem);
    }
    terminated(cut(alt((group, word))), multispace0).parse(i)
}

/// `group = '@' group_char+`
fn group(i: &str) -> Res<'_, Ast<'_>> {
    let (rest, _) = char('@').parse(i)?;
    let name: Res<'_, &str> = take_while1(is_group_char).parse(rest);
    match name {
        Ok((rest, name)) => Ok((rest, Ast::Group(name))),
        Err(_) if rest.is_empty() || rest.starts_with(',') || rest.starts_with(is_space) => {
            failure(i, Why::EmptyGroupName)
        }
        Err(_) => failure(rest, Why::Unexpected),
    }
}

/// `word = (word_char+ | bracket)+`
fn word(i: &str) -> Res<'_, Ast<'_>> {
    let text = take_while1(is_word_char).map(Part::Text);
    consumed(many1(alt((text, bracket))))
        .map(|(text, parts)| Ast::Word { text, parts })
        .parse(i)
}

/// `bracket = '[' number ('-' number)? (',' number ('-' number)?)* ']'`
fn bracket(i: &str) -> Res<'_, Part<'_>> {
    let (rest, _) = char('[').parse(i)?;
    let entry = (digit1, opt(preceded(char('-'), cut(digit1))));
    let body: Res<'_, _> =
        terminated(separated_list1(char(','), cut(entry)), char(']')).parse(rest);
    match body {
        Ok((rest, entries)) => Ok((rest, Part::Bracket(entries))),
        // Running out of input inside the brackets means no ']' follows.
        Err(nom::Err::Error(stop) | nom::Err::Failure(stop)) if stop.at.is_empty() => {
            failure(i, Why::Unclosed)
        }
        Err(nom::Err::Error(stop) | nom::Err::Failure(stop)) => failure(stop.at, stop.why),
        Err(incomplete) => Err(incomplete),
    }
}

// ---- errors and expansion ----

/// The 1-based character column where `part` (a slice of `input`) starts.
fn column(input: &str, part: &str) -> usize {
    input[..input.offset(part)].chars().count() + 1
}

fn syntax_error(input: &str, stop: Stop<'_>) -> NodeRangeError {
    let at = input.offset(stop.at);
    let column = column(input, stop.at);
    let input_owned = input.to_owned();
    match stop.why {
        Why::EmptyItem if input.chars().all(is_space) => NodeRangeError::Empty,
        Why::EmptyItem => NodeRangeError::EmptyItem {
            column,
            input: input_owned,
        },
        Why::Unclosed => NodeRangeError::UnclosedBracket {
            column,
            input: input_owned,
        },
        Why::EmptyGroupName => NodeRangeError::EmptyGroupName {
            column,
            input: input_owned,
        },
        Why::Unexpected => match stop.at.chars().next() {
            None => NodeRangeError::UnexpectedEnd {
                column,
                input: input_owned,
            },
            Some(found) => {
                // `node 1`: blame the space inside the item, not the `1`.
                let before = input[..at].trim_end_matches(is_space);
                let space_inside = before.len() < at
                    && !before.is_empty()
                    && !before.ends_with(',')
                    && (is_word_char(found) || found == '@' || found == '[');
                if space_inside {
                    let space = &input[before.len()..];
                    NodeRangeError::UnexpectedChar {
                        found: space.chars().next().unwrap_or(' '),
                        column: self::column(input, space),
                        input: input_owned,
                    }
                } else {
                    NodeRangeError::UnexpectedChar {
                        found,
                        column,
                        input: input_owned,
                    }
                }
            }
        },
    }
}

/// An inclusive run of numbers, zero-padded to `width`.
struct Span {
    lo: u64,
    hi: u64,
    width: usize,
}

enum Segment<'a> {
    Text(&'a str),
    Numbers(Vec<Span>),
}

fn span(input: &str, start: &str, end: Option<&str>) -> Result<Span, NodeRangeError> {
    let number = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| NodeRangeError::NumberTooLarge {
                number: s.to_owned(),
                column: column(input, s),
                input: input.to_owned(),
            })
    };
    let lo = number(start)?;
    let hi = end.map_or(Ok(lo), number)?;
    if hi < lo {
        return Err(NodeRangeError::ReversedRange {
            start: start.to_owned(),
            end: end.unwrap_or(start).to_owned(),
            column: column(input, start),
            input: input.to_owned(),
        });
    }
    let width = if start.starts_with('0') {
        start.len()
    } else {
        0
    };
    Ok(Span { lo, hi, width })
}

/// Adds the `count` names of the item `text` to `total`, within [`MAX_NAMES`] (a literal
/// counts as one name, wherever it stands).
fn add_names(input: &str, text: &str, total: &mut u64, count: u64) -> Result<(), NodeRangeError> {
    *total = total.saturating_add(count);
    if *total > MAX_NAMES {
        return Err(NodeRangeError::TooLarge {
            pattern: text.to_owned(),
            column: column(input, text),
            limit: MAX_NAMES,
            input: input.to_owned(),
        });
    }
    Ok(())
}

/// Turns one written item into a [`RangeItem`], adding its names to `total`.
fn expand(input: &str, ast: Ast<'_>, total: &mut u64) -> Result<RangeItem, NodeRangeError> {
    let (text, parts) = match ast {
        Ast::Group(name) => return Ok(RangeItem::Group(name.to_owned())),
        Ast::Word { text, parts } if parts.len() == 1 && matches!(parts[0], Part::Text(_)) => {
            add_names(input, text, total, 1)?;
            return Ok(RangeItem::Literal(text.to_owned()));
        }
        Ast::Word { text, parts } => (text, parts),
    };

    // Check every range and count the names before building any of them.
    let mut segments = Vec::with_capacity(parts.len());
    let mut count: u64 = 1;
    for part in parts {
        match part {
            Part::Text(t) => segments.push(Segment::Text(t)),
            Part::Bracket(entries) => {
                let spans = entries
                    .into_iter()
                    .map(|(start, end)| span(input, start, end))
                    .collect::<Result<Vec<_>, _>>()?;
                let n = spans.iter().fold(0u64, |n, s| {
                    n.saturating_add((s.hi - s.lo).saturating_add(1))
                });
                count = count.saturating_mul(n);
                segments.push(Segment::Numbers(spans));
            }
        }
    }
    add_names(input, text, total, count)?;

    let mut words = vec![String::new()];
    for segment in segments {
        match segment {
            Segment::Text(t) => words.iter_mut().for_each(|w| w.push_str(t)),
            Segment::Numbers(spans) => {
                words = words
                    .iter()
                    .flat_map(|w| {
                        spans.iter().flat_map(move |s| {
                            (s.lo..=s.hi).map(move |n| format!("{w}{n:0width$}", width = s.width))
                        })
                    })
                    .collect();
            }
        }
    }
    Ok(RangeItem::Expanded {
        pattern: text.to_owned(),
        words,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(input: &str) -> Vec<RangeItem> {
        parse_noderange(input)
            .unwrap_or_else(|e| panic!("{input:?} should parse: {e}"))
            .items
    }

    fn lit(s: &str) -> RangeItem {
        RangeItem::Literal(s.to_owned())
    }

    fn words(input: &str) -> Vec<String> {
        match items(input).as_slice() {
            [RangeItem::Expanded { words, .. }] => words.clone(),
            other => panic!("{input:?} gave {other:?}, not one expanded item"),
        }
    }

    fn err(input: &str) -> NodeRangeError {
        match parse_noderange(input) {
            Ok(r) => panic!("{input:?} should fail, got {r:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn literal_names() {
        assert_eq!(items("node042"), vec![lit("node042")]);
        assert_eq!(items("lab-7.example.org"), vec![lit("lab-7.example.org")]);
        assert_eq!(items("under_score"), vec![lit("under_score")]);
    }

    #[test]
    fn macs_in_every_spelling_are_literals() {
        assert_eq!(
            items("52:54:00:aa:bb:01,52-54-00-AA-BB-01,5254.00aa.bb01"),
            vec![
                lit("52:54:00:aa:bb:01"),
                lit("52-54-00-AA-BB-01"),
                lit("5254.00aa.bb01"),
            ]
        );
    }

    #[test]
    fn padded_range() {
        assert_eq!(words("node[001-003]"), ["node001", "node002", "node003"]);
        let all = words("node[001-300]");
        assert_eq!(all.len(), 300);
        assert_eq!(all[0], "node001");
        assert_eq!(all[299], "node300");
    }

    #[test]
    fn unpadded_range() {
        assert_eq!(words("node[1-3]"), ["node1", "node2", "node3"]);
        assert_eq!(
            words("n[1-10]"),
            ["n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10"]
        );
    }

    #[test]
    fn padding_follows_the_start_bound() {
        assert_eq!(words("n[08-11]"), ["n08", "n09", "n10", "n11"]);
        // Numbers wider than the start bound are not cut.
        assert_eq!(words("n[98-100]"), ["n98", "n99", "n100"]);
        assert_eq!(words("n[098-100]"), ["n098", "n099", "n100"]);
        assert_eq!(words("n[0-2]"), ["n0", "n1", "n2"]);
        assert_eq!(words("n[7]"), ["n7"]);
        assert_eq!(words("n[07]"), ["n07"]);
    }

    #[test]
    fn list_inside_brackets() {
        assert_eq!(
            words("node[1-5,9]"),
            ["node1", "node2", "node3", "node4", "node5", "node9"]
        );
        assert_eq!(
            words("n[01-02,7,010-011]"),
            ["n01", "n02", "n7", "n010", "n011"]
        );
    }

    #[test]
    fn several_brackets_make_a_product() {
        assert_eq!(
            words("rack[1-2]n[01-04]"),
            [
                "rack1n01", "rack1n02", "rack1n03", "rack1n04", "rack2n01", "rack2n02", "rack2n03",
                "rack2n04",
            ]
        );
        assert_eq!(words("[1-2][3-4]"), ["13", "14", "23", "24"]);
    }

    #[test]
    fn suffix_after_bracket() {
        assert_eq!(
            items("node[1-3].cluster"),
            vec![RangeItem::Expanded {
                pattern: "node[1-3].cluster".to_owned(),
                words: vec![
                    "node1.cluster".to_owned(),
                    "node2.cluster".to_owned(),
                    "node3.cluster".to_owned(),
                ],
            }]
        );
    }

    #[test]
    fn commas_inside_brackets_belong_to_the_bracket() {
        let got = items("node[1-2,9],other");
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            RangeItem::Expanded {
                pattern: "node[1-2,9]".to_owned(),
                words: vec!["node1".to_owned(), "node2".to_owned(), "node9".to_owned()],
            }
        );
        assert_eq!(got[1], lit("other"));
    }

    #[test]
    fn groups() {
        assert_eq!(
            items("@rack-1_a.b"),
            vec![RangeItem::Group("rack-1_a.b".to_owned())]
        );
        assert_eq!(
            items("@web,db01"),
            vec![RangeItem::Group("web".to_owned()), lit("db01")]
        );
    }

    #[test]
    fn as_groups() {
        assert_eq!(
            parse_noderange("@physics,@lab,@physics")
                .unwrap()
                .as_groups(),
            Some(vec!["physics", "lab"])
        );
        assert_eq!(parse_noderange("@lab,node1").unwrap().as_groups(), None);
    }

    #[test]
    fn as_single_group() {
        assert_eq!(
            parse_noderange("@web").unwrap().as_single_group(),
            Some("web")
        );
        assert_eq!(
            parse_noderange(" @web ").unwrap().as_single_group(),
            Some("web")
        );
        assert_eq!(parse_noderange("@web,@db").unwrap().as_single_group(), None);
        assert_eq!(parse_noderange("web").unwrap().as_single_group(), None);
    }

    #[test]
    fn whitespace_around_items_is_ignored() {
        assert_eq!(
            items("  a ,\tb[1-2] ,  @g \n"),
            vec![
                lit("a"),
                RangeItem::Expanded {
                    pattern: "b[1-2]".to_owned(),
                    words: vec!["b1".to_owned(), "b2".to_owned()],
                },
                RangeItem::Group("g".to_owned()),
            ]
        );
    }

    #[test]
    fn empty_input() {
        assert_eq!(err(""), NodeRangeError::Empty);
        assert_eq!(err("  \t"), NodeRangeError::Empty);
    }

    #[test]
    fn empty_items() {
        assert_eq!(
            err("a,,b"),
            NodeRangeError::EmptyItem {
                column: 3,
                input: "a,,b".to_owned()
            }
        );
        assert_eq!(
            err("a, ,b"),
            NodeRangeError::EmptyItem {
                column: 4,
                input: "a, ,b".to_owned()
            }
        );
        assert_eq!(
            err("a,"),
            NodeRangeError::EmptyItem {
                column: 3,
                input: "a,".to_owned()
            }
        );
        assert_eq!(
            err(",a"),
            NodeRangeError::EmptyItem {
                column: 1,
                input: ",a".to_owned()
            }
        );
        let message = err("a,,b").to_string();
        assert!(message.contains("empty item at column 3"), "{message}");
    }

    #[test]
    fn reversed_range() {
        let e = err("x,node[5-1]");
        assert_eq!(
            e,
            NodeRangeError::ReversedRange {
                start: "5".to_owned(),
                end: "1".to_owned(),
                column: 8,
                input: "x,node[5-1]".to_owned(),
            }
        );
        assert!(
            e.to_string().contains("reversed range 5-1 at column 8"),
            "{e}"
        );
        assert!(e.to_string().contains("[1-5]"), "{e}");
    }

    #[test]
    fn unclosed_bracket() {
        for input in ["node[1-3", "node[1-3,", "node[1-", "node[", "node[1-3,9"] {
            assert_eq!(
                err(input),
                NodeRangeError::UnclosedBracket {
                    column: 5,
                    input: input.to_owned()
                },
                "{input}"
            );
        }
        assert!(err("ab[1").to_string().contains("'[' at column 3"));
    }

    #[test]
    fn bad_characters_are_named_with_their_column() {
        let e = err("node[1-3];x");
        assert_eq!(
            e,
            NodeRangeError::UnexpectedChar {
                found: ';',
                column: 10,
                input: "node[1-3];x".to_owned(),
            }
        );
        assert_eq!(
            e.to_string(),
            "unexpected ';' at column 10 in \"node[1-3];x\"; \
             a noderange is a comma list of names, MACs, name[1-10] ranges and @group"
        );
        let cases: &[(&str, char, usize)] = &[
            ("a/b", '/', 2),
            ("\"a\"", '"', 1),
            ("a,'b'", '\'', 3),
            ("$x", '$', 1),
            ("nœud", 'œ', 2),
            ("aé,b;", 'é', 2),
            ("a\u{7}", '\u{7}', 2),
            ("node 1", ' ', 5),
            ("a,node\t@g", '\t', 7),
            ("node ;", ';', 6),
            ("node]", ']', 5),
            ("node[]", ']', 6),
            ("node[1-3,]", ']', 10),
            ("node[a-3]", 'a', 6),
            ("node[1-x]", 'x', 8),
            ("node[1-3 ]", ' ', 9),
            ("node[1--3]", '-', 8),
            ("node[1-3,other", 'o', 10),
            ("@grp;", ';', 5),
            ("@grp[1-2]", '[', 5),
            ("@a:b", ':', 3),
            ("@/", '/', 2),
        ];
        for &(input, found, column) in cases {
            assert_eq!(
                err(input),
                NodeRangeError::UnexpectedChar {
                    found,
                    column,
                    input: input.to_owned()
                },
                "{input:?}"
            );
        }
        // Columns count characters, not bytes.
        assert!(
            err("é,x;")
                .to_string()
                .contains("unexpected 'é' at column 1")
        );
        assert!(err("a\u{7}").to_string().contains("'\\u{7}' at column 2"));
    }

    #[test]
    fn empty_group_name() {
        for (input, column) in [("@", 1), ("a,@", 3), ("@,a", 1), ("@ ,a", 1)] {
            assert_eq!(
                err(input),
                NodeRangeError::EmptyGroupName {
                    column,
                    input: input.to_owned()
                },
                "{input:?}"
            );
        }
        assert!(err("x,@").to_string().contains("'@' at column 3"));
    }

    #[test]
    fn too_large() {
        assert_eq!(words("n[1-100000]").len(), 100_000);
        let e = err("a,n[1-100001]");
        assert_eq!(
            e,
            NodeRangeError::TooLarge {
                pattern: "n[1-100001]".to_owned(),
                column: 3,
                limit: 100_000,
                input: "a,n[1-100001]".to_owned(),
            }
        );
        assert!(e.to_string().contains("more than 100000 names"), "{e}");
        assert!(e.to_string().contains("column 3"), "{e}");
        // The product of several brackets counts, and so does the whole range.
        assert!(matches!(
            err("r[1-1000]n[1-1000]"),
            NodeRangeError::TooLarge { .. }
        ));
        assert!(matches!(
            err("a[1-60000],b[1-60000]"),
            NodeRangeError::TooLarge { column: 12, .. }
        ));
        // A name after a full range is one too many, as it is before one (found by the
        // parse_line fuzz target: `n[1-100000],a` expanded to 100,001 names).
        assert!(matches!(
            err("n[1-100000],a"),
            NodeRangeError::TooLarge { column: 13, .. }
        ));
        assert!(matches!(
            err("a,n[1-100000]"),
            NodeRangeError::TooLarge { column: 3, .. }
        ));
        // Huge bounds must not overflow the count.
        assert!(matches!(
            err("n[0-18446744073709551615]"),
            NodeRangeError::TooLarge { .. }
        ));
    }

    #[test]
    fn number_too_large() {
        let input = "n[1-99999999999999999999999]";
        assert_eq!(
            err(input),
            NodeRangeError::NumberTooLarge {
                number: "99999999999999999999999".to_owned(),
                column: 5,
                input: input.to_owned(),
            }
        );
    }

    #[test]
    fn unexpected_end_is_reported_at_the_end() {
        // No grammar path stops with "unexpected" at the very end today, but
        // the error must still be well-formed if one ever does.
        let input = "ab";
        let stop = Stop::new(&input[input.len()..], Why::Unexpected);
        assert_eq!(
            syntax_error(input, stop),
            NodeRangeError::UnexpectedEnd {
                column: 3,
                input: "ab".to_owned()
            }
        );
    }
}
