//! `strftime_now(format)` for chat templates (Llama 3.1+ print today's date): a small C-style
//! `strftime` over UTC civil time. The calendar conversion is the standard days-since-epoch to
//! proleptic Gregorian date algorithm (era of 400 years, March-based year), written from its
//! published description.

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// A UTC date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CivilTime {
    pub year: i64,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Monday .. 6 = Sunday
    pub weekday: u32,
    /// 1..=366
    pub day_of_year: u32,
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

impl CivilTime {
    /// The UTC time `seconds` after 1970-01-01T00:00:00Z (negative: before).
    pub fn from_unix(seconds: i64) -> Self {
        let days = seconds.div_euclid(86_400);
        let secs = seconds.rem_euclid(86_400) as u32;
        // Shift the epoch to 0000-03-01 so leap days fall at the end of each year.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let day_of_era = z.rem_euclid(146_097); // [0, 146096]
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_march_year =
            day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_from_march = (5 * day_of_march_year + 2) / 153; // 0 = March
        let day = (day_of_march_year - (153 * month_from_march + 2) / 5 + 1) as u32;
        let month = if month_from_march < 10 {
            month_from_march + 3
        } else {
            month_from_march - 9
        } as u32;
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        const CUMULATIVE: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let day_of_year =
            CUMULATIVE[(month - 1) as usize] + day + u32::from(month > 2 && is_leap(year));
        // 1970-01-01 was a Thursday (3 when Monday is 0).
        let weekday = (days + 3).rem_euclid(7) as u32;
        CivilTime {
            year,
            month,
            day,
            hour: secs / 3600,
            minute: secs / 60 % 60,
            second: secs % 60,
            weekday,
            day_of_year,
        }
    }

    /// C `strftime` in the C locale for the common conversions (`%Y %y %m %d %e %j %H %I %M %S %p
    /// %b %h %B %a %A %F %T %D %%`), plus glibc's `%-d`-style flag that drops padding. Unknown
    /// conversions are copied through unchanged, as Python's `strftime` on glibc does.
    pub fn format(&self, fmt: &str) -> String {
        let mut out = String::new();
        let mut chars = fmt.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let no_pad = chars.peek() == Some(&'-');
            if no_pad {
                chars.next();
            }
            let Some(conv) = chars.next() else {
                out.push('%');
                if no_pad {
                    out.push('-');
                }
                break;
            };
            let num = |value: i64, width: usize| {
                if no_pad {
                    value.to_string()
                } else {
                    format!("{value:0width$}")
                }
            };
            let hour12 = if self.hour.is_multiple_of(12) {
                12
            } else {
                self.hour % 12
            };
            let piece = match conv {
                'Y' => self.year.to_string(),
                'y' => num(self.year.rem_euclid(100), 2),
                'm' => num(self.month.into(), 2),
                'd' => num(self.day.into(), 2),
                'e' => {
                    if no_pad {
                        self.day.to_string()
                    } else {
                        format!("{:>2}", self.day)
                    }
                }
                'j' => num(self.day_of_year.into(), 3),
                'H' => num(self.hour.into(), 2),
                'I' => num(hour12.into(), 2),
                'M' => num(self.minute.into(), 2),
                'S' => num(self.second.into(), 2),
                'p' => if self.hour < 12 { "AM" } else { "PM" }.to_string(),
                'B' => MONTHS[(self.month - 1) as usize].to_string(),
                'b' | 'h' => MONTHS[(self.month - 1) as usize][..3].to_string(),
                'A' => WEEKDAYS[self.weekday as usize].to_string(),
                'a' => WEEKDAYS[self.weekday as usize][..3].to_string(),
                'F' => format!("{}-{:02}-{:02}", self.year, self.month, self.day),
                'T' => format!("{:02}:{:02}:{:02}", self.hour, self.minute, self.second),
                'D' => format!(
                    "{:02}/{:02}/{:02}",
                    self.month,
                    self.day,
                    self.year.rem_euclid(100)
                ),
                '%' => "%".to_string(),
                other => format!("%{}{other}", if no_pad { "-" } else { "" }),
            };
            out.push_str(&piece);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_python_strftime() {
        // Expected: Python `datetime.fromtimestamp(t, timezone.utc).strftime(fmt)`.
        let cases: [(i64, &str, &str); 6] = [
            (
                0,
                "%Y-%m-%d %H:%M:%S %a %A %b %B %j",
                "1970-01-01 00:00:00 Thu Thursday Jan January 001",
            ),
            (1_721_900_000, "%d %b %Y", "25 Jul 2024"),
            (951_782_400, "%F %j %a", "2000-02-29 060 Tue"),
            (1_798_761_599, "%T %p %I %y", "23:59:59 PM 11 26"),
            (1_709_251_200, "%-d %B, %e|%D", "1 March,  1|03/01/24"),
            (-86_400, "%Y-%m-%d %A %%", "1969-12-31 Wednesday %"),
        ];
        for (t, fmt, want) in cases {
            assert_eq!(CivilTime::from_unix(t).format(fmt), want, "{t} {fmt}");
        }
    }
}
