//! Standard 5-field cron schedules, read in a stated time zone.
//!
//! `minute hour day-of-month month day-of-week`, each field `*`, a number, a range `a-b`, a
//! step `*/n`, `a-b/n` or `a/n`, or a comma-separated list of these. Months and weekdays
//! may be named (`jan`, `mon`); Sunday is 0 or 7. As in Vixie cron, when both day fields
//! are restricted a day matches if either does. `@hourly`, `@daily` (`@midnight`),
//! `@weekly`, `@monthly` and `@yearly` (`@annually`) stand for their usual schedules.
//!
//! Times are local to the schedule's time zone: a time skipped by a daylight-saving change
//! does not fire that day, and a time that happens twice fires once, the first time.

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// Longest schedule text.
pub const MAX_SCHEDULE_CHARS: usize = 128;

/// How far ahead the next firing is looked for; a schedule with none in this window (such
/// as the 30th of February) is refused.
const HORIZON_DAYS: i64 = 366 * 5;

/// A parsed schedule with its time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_restricted: bool,
    weekdays_restricted: bool,
    zone: Tz,
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY: FieldSpec = FieldSpec {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
// 7 is accepted as Sunday and folded onto 0.
const WEEKDAY: FieldSpec = FieldSpec {
    name: "day of week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

impl FieldSpec {
    fn value(&self, text: &str) -> Result<u32, String> {
        let lower = text.to_ascii_lowercase();
        if let Some(index) = self.names.iter().position(|n| *n == lower) {
            // Named months count from 1, named weekdays from 0.
            return Ok(index as u32 + if self.min == 1 { 1 } else { 0 });
        }
        let value: u32 = text
            .parse()
            .map_err(|_| format!("{} field: `{text}` is not a number", self.name))?;
        if value < self.min || value > self.max {
            return Err(format!(
                "{} field: {value} is out of range {}-{}",
                self.name, self.min, self.max
            ));
        }
        Ok(value)
    }

    /// The bits set by one field, and whether the field is restricted (not `*`).
    fn parse(&self, text: &str) -> Result<(u64, bool), String> {
        let mut bits = 0u64;
        for item in text.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => {
                    let step: u32 = step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        format!(
                            "{} field: step `{step}` is not a positive number",
                            self.name
                        )
                    })?;
                    (range, Some(step))
                }
                None => (item, None),
            };
            let (low, high) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(a)?, self.value(b)?);
                if a > b {
                    return Err(format!(
                        "{} field: range `{range}` runs backwards",
                        self.name
                    ));
                }
                (a, b)
            } else if range.is_empty() {
                return Err(format!("{} field: an empty item", self.name));
            } else {
                let a = self.value(range)?;
                // `a/n` means from a to the end, every n.
                (a, if step.is_some() { self.max } else { a })
            };
            let mut value = low;
            while value <= high {
                bits |= 1 << value;
                value += step.unwrap_or(1);
            }
        }
        Ok((bits, !text.starts_with('*')))
    }
}

impl Schedule {
    /// Parses `text` in the time zone named `zone` (IANA, such as `Europe/Helsinki`).
    /// Errors name the field at fault.
    pub fn parse(text: &str, zone: &str) -> Result<Self, String> {
        let zone: Tz = zone
            .trim()
            .parse()
            .map_err(|_| format!("`{}` is not a known time zone", zone.trim()))?;
        let text = text.trim();
        if text.chars().count() > MAX_SCHEDULE_CHARS {
            return Err(format!(
                "a schedule has at most {MAX_SCHEDULE_CHARS} characters"
            ));
        }
        let expanded = match text.to_ascii_lowercase().as_str() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other if other.starts_with('@') => {
                return Err(format!("`{text}` is not a known schedule shorthand"));
            }
            _ => text,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "a schedule has 5 fields (minute hour day-of-month month day-of-week); this has {}",
                fields.len()
            ));
        }
        let (minutes, _) = MINUTE.parse(fields[0])?;
        let (hours, _) = HOUR.parse(fields[1])?;
        let (days, days_restricted) = DAY.parse(fields[2])?;
        let (months, _) = MONTH.parse(fields[3])?;
        let (mut weekdays, weekdays_restricted) = WEEKDAY.parse(fields[4])?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & 0x7f;
        }
        let schedule = Self {
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: weekdays as u8,
            days_restricted,
            weekdays_restricted,
            zone,
        };
        if schedule.next_after(Utc::now()).is_none() {
            return Err(format!(
                "`{text}` never fires: no such day in the next {} years",
                HORIZON_DAYS / 366
            ));
        }
        Ok(schedule)
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let day = self.days & (1 << date.day()) != 0;
        let weekday = self.weekdays & (1 << date.weekday().num_days_from_sunday()) != 0;
        if self.days_restricted && self.weekdays_restricted {
            day || weekday
        } else {
            day && weekday
        }
    }

    /// The first time strictly after `after` that the schedule fires.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&self.zone).naive_local();
        let start = local.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        for offset in 0..HORIZON_DAYS {
            let date = start.date() + Duration::days(offset);
            if !self.day_matches(date) {
                continue;
            }
            let first_day = offset == 0;
            for hour in (0..24).filter(|h| self.hours & (1 << h) != 0) {
                if first_day && hour < start.hour() {
                    continue;
                }
                for minute in (0..60).filter(|m| self.minutes & (1u64 << m) != 0) {
                    if first_day && hour == start.hour() && minute < start.minute() {
                        continue;
                    }
                    let naive = date.and_hms_opt(hour, minute, 0)?;
                    let found = match self.zone.from_local_datetime(&naive) {
                        LocalResult::Single(time) => Some(time),
                        LocalResult::Ambiguous(first, _) => Some(first),
                        LocalResult::None => None,
                    };
                    if let Some(time) = found.map(|t| t.to_utc()).filter(|t| *t > after) {
                        return Some(time);
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn next(schedule: &str, zone: &str, after: &str) -> String {
        Schedule::parse(schedule, zone)
            .unwrap()
            .next_after(at(after))
            .unwrap()
            .to_rfc3339()
    }

    #[test]
    fn every_minute_fires_on_the_next_minute() {
        assert_eq!(
            next("* * * * *", "UTC", "2026-11-27T10:15:30Z"),
            "2026-11-27T10:16:00+00:00"
        );
        assert_eq!(
            next("* * * * *", "UTC", "2026-11-27T10:15:00Z"),
            "2026-11-27T10:16:00+00:00"
        );
    }

    #[test]
    fn lists_ranges_and_steps() {
        assert_eq!(
            next("*/15 9-17 * * *", "UTC", "2026-11-27T17:50:00Z"),
            "2026-11-28T09:00:00+00:00"
        );
        assert_eq!(
            next("5,35 * * * *", "UTC", "2026-11-27T10:06:00Z"),
            "2026-11-27T10:35:00+00:00"
        );
        assert_eq!(
            next("10/20 * * * *", "UTC", "2026-11-27T10:31:00Z"),
            "2026-11-27T10:50:00+00:00"
        );
    }

    #[test]
    fn names_and_sunday_as_seven() {
        // 2026-11-27 is a Friday.
        assert_eq!(
            next("0 3 * * mon-fri", "UTC", "2026-11-27T04:00:00Z"),
            "2026-11-30T03:00:00+00:00"
        );
        assert_eq!(
            next("0 0 * * 7", "UTC", "2026-11-27T04:00:00Z"),
            "2026-11-29T00:00:00+00:00"
        );
        assert_eq!(
            next("0 0 1 JAN *", "UTC", "2026-11-27T04:00:00Z"),
            "2027-01-01T00:00:00+00:00"
        );
        assert_eq!(
            next("@weekly", "UTC", "2026-11-27T04:00:00Z"),
            "2026-11-29T00:00:00+00:00"
        );
    }

    #[test]
    fn both_day_fields_restricted_match_either() {
        // The 1st of the month or any Monday.
        assert_eq!(
            next("0 12 1 * mon", "UTC", "2026-11-27T00:00:00Z"),
            "2026-11-30T12:00:00+00:00"
        );
        assert_eq!(
            next("0 12 1 * mon", "UTC", "2026-11-30T13:00:00Z"),
            "2026-12-01T12:00:00+00:00"
        );
        // Only the day of month restricted: weekdays do not widen it.
        assert_eq!(
            next("0 12 1 * *", "UTC", "2026-11-27T00:00:00Z"),
            "2026-12-01T12:00:00+00:00"
        );
    }

    #[test]
    fn time_zone_is_applied() {
        // 09:00 in Helsinki (UTC+2 in winter).
        assert_eq!(
            next("0 9 * * *", "Europe/Helsinki", "2026-11-27T08:00:00Z"),
            "2026-11-28T07:00:00+00:00"
        );
    }

    #[test]
    fn daylight_saving_gap_and_overlap() {
        // 2027-03-28: Helsinki skips 03:00-04:00, so 03:30 does not exist that day.
        assert_eq!(
            next("30 3 * * *", "Europe/Helsinki", "2027-03-27T12:00:00Z"),
            "2027-03-29T00:30:00+00:00"
        );
        // 2026-10-25: 03:30 happens twice; it fires the first time only.
        assert_eq!(
            next("30 3 * * *", "Europe/Helsinki", "2026-10-24T12:00:00Z"),
            "2026-10-25T00:30:00+00:00"
        );
        assert_eq!(
            next("30 3 * * *", "Europe/Helsinki", "2026-10-25T00:30:00Z"),
            "2026-10-26T01:30:00+00:00"
        );
    }

    #[test]
    fn leap_day_is_found_years_ahead() {
        assert_eq!(
            next("0 0 29 2 *", "UTC", "2026-11-27T00:00:00Z"),
            "2028-02-29T00:00:00+00:00"
        );
    }

    #[test]
    fn bad_schedules_name_the_field() {
        let error = |text: &str| Schedule::parse(text, "UTC").unwrap_err();
        assert!(error("60 * * * *").contains("minute field: 60 is out of range 0-59"));
        assert!(error("* 24 * * *").contains("hour field"));
        assert!(error("* * 0 * *").contains("day of month field"));
        assert!(error("* * * 13 *").contains("month field"));
        assert!(error("* * * * 8").contains("day of week field"));
        assert!(error("* * * * mon-sun").contains("runs backwards"));
        assert!(error("*/0 * * * *").contains("step"));
        assert!(error("* * * *").contains("5 fields"));
        assert!(error("x * * * *").contains("not a number"));
        assert!(error("0 0 30 2 *").contains("never fires"));
        assert!(error("@often").contains("shorthand"));
        let long = format!(
            "{} * * * *",
            (0..60).map(|m| m.to_string()).collect::<Vec<_>>().join(",")
        );
        assert!(error(&long).contains("at most 128"));
        assert!(
            Schedule::parse("* * * * *", "Mars/Olympus")
                .unwrap_err()
                .contains("time zone")
        );
    }
}
