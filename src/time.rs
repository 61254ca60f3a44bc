//! Reading times the way admins write them: RFC 3339, `YYYY-MM-DD HH:MM`, `yesterday 02:00`,
//! `2h ago`, `now`; local time unless an offset is given.

use anyhow::{Result, anyhow};
use jiff::civil::{Date, DateTime, Time};
use jiff::{Span, Timestamp, Zoned};

/// Parse a time given on the command line, relative to `now` in its time zone.
pub fn parse_time_at(input: &str, now: &Zoned) -> Result<Timestamp> {
    let s = input.trim();
    let err = || {
        anyhow!(
            "{input:?} is not a time; write 2026-11-20T02:00:00Z, 2026-11-20 02:00, \
             yesterday 02:00, today, 2h ago or now"
        )
    };
    if s == "now" {
        return Ok(now.timestamp());
    }
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    // As nmt prints times: `2026-11-20 03:05:11 +01:00`.
    if let Some((dt, off)) = s.rsplit_once(' ')
        && (off.starts_with('+') || off.starts_with('-'))
        && let Ok(t) = format!("{}{off}", dt.trim()).parse::<Timestamp>()
    {
        return Ok(t);
    }
    let tz = now.time_zone().clone();
    let local = |dt: DateTime| -> Result<Timestamp> {
        Ok(dt.to_zoned(tz.clone()).map_err(|_| err())?.timestamp())
    };
    if let Ok(dt) = s.parse::<DateTime>() {
        return local(dt);
    }
    if let Ok(d) = s.parse::<Date>() {
        return local(d.to_datetime(Time::midnight()));
    }
    let (day, rest) = match s.split_once(' ') {
        Some((d, r)) => (d, Some(r.trim())),
        None => (s, None),
    };
    let base = match day {
        "today" => Some(now.date()),
        "yesterday" => now.date().yesterday().ok(),
        _ => None,
    };
    if let Some(date) = base {
        let time = match rest {
            None => Time::midnight(),
            Some(t) => t.parse::<Time>().map_err(|_| err())?,
        };
        return local(date.to_datetime(time));
    }
    if let Some(ago) = s.strip_suffix("ago") {
        let span: Span = ago.trim().parse().map_err(|_| err())?;
        return Ok(now.checked_sub(span).map_err(|_| err())?.timestamp());
    }
    Err(err())
}

/// Parse a time given on the command line, relative to the current time and zone.
pub fn parse_time(input: &str) -> Result<Timestamp> {
    parse_time_at(input, &Zoned::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let now: Zoned = "2026-11-21T12:00:00+01:00[Europe/Paris]".parse().unwrap();
        let t = |s: &str| parse_time_at(s, &now).unwrap().to_string();
        assert_eq!(t("2026-11-20T02:00:00Z"), "2026-11-20T02:00:00Z");
        assert_eq!(t("2026-11-20 02:00"), "2026-11-20T01:00:00Z");
        assert_eq!(t("2026-11-20"), "2026-11-19T23:00:00Z");
        assert_eq!(t("yesterday 02:00"), "2026-11-20T01:00:00Z");
        assert_eq!(t("today"), "2026-11-20T23:00:00Z");
        assert_eq!(t("2h ago"), "2026-11-21T09:00:00Z");
        assert_eq!(t("2 hours ago"), "2026-11-21T09:00:00Z");
        assert_eq!(t("now"), "2026-11-21T11:00:00Z");
        assert!(parse_time_at("last tuesday", &now).is_err());
        // As nmt prints them: the offset says which zone.
        assert_eq!(t("2026-11-20 03:05:11 +01:00"), "2026-11-20T02:05:11Z");
        assert_eq!(t("2026-11-20 03:05:11 -05:30"), "2026-11-20T08:35:11Z");
        let printed = crate::app::local_time(t("2026-11-20T02:05:11Z").parse().unwrap());
        assert_eq!(t(&printed), "2026-11-20T02:05:11Z", "{printed}");
    }
}
