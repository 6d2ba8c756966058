//! serde helpers shared by the config model: ports with readable range errors, port ranges
//! written as `7882` or `"7882-7892"`, and numbers written the Go way (`1_000_000_000`).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::model::PortRange;

/// A port number; out-of-range values fail with "70000 is not a valid port (0-65535)".
pub(crate) struct Port(pub u16);

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number (0-65535)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                u16::try_from(v)
                    .map(Port)
                    .map_err(|_| E::custom(format!("{v} is not a valid port (0-65535)")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                u16::try_from(v)
                    .map(Port)
                    .map_err(|_| E::custom(format!("{v} is not a valid port (0-65535)")))
            }
        }
        d.deserialize_u64(V)
    }
}

/// `deserialize_with` for a `u16` port.
pub(crate) fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    Port::deserialize(d).map(|p| p.0)
}

/// `deserialize_with` for an optional port (`null` or absent = `None`).
pub(crate) fn opt_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    Option::<Port>::deserialize(d).map(|p| p.map(|p| p.0))
}

impl FromStr for PortRange {
    type Err = String;

    /// Parses `"7882"` or `"7882-7892"`. Does not check `start <= end`; validation does.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not a port or a port range (e.g. 7882 or 7882-7892)");
        let one = |p: &str| p.trim().parse::<u16>().map_err(|_| bad());
        match s.split_once('-') {
            Some((a, b)) => Ok(PortRange {
                start: one(a)?,
                end: one(b)?,
            }),
            None => {
                let p = one(s)?;
                Ok(PortRange { start: p, end: p })
            }
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortRange;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port (7882) or a port range (\"7882-7892\")")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortRange, E> {
                let p = u16::try_from(v)
                    .map_err(|_| E::custom(format!("{v} is not a valid port (0-65535)")))?;
                Ok(PortRange { start: p, end: p })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortRange, E> {
                let p = u16::try_from(v)
                    .map_err(|_| E::custom(format!("{v} is not a valid port (0-65535)")))?;
                Ok(PortRange { start: p, end: p })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortRange, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A number that may also be written as a string with `_` separators (`"1_000_000"`,
/// which Go's YAML reads as a number and yaml_serde reads as a string).
struct Lenient<T>(T);

pub(crate) trait FromNumber: Sized + FromStr {
    fn from_i64(v: i64) -> Option<Self>;
    fn from_u64(v: u64) -> Option<Self>;
    fn from_f64(v: f64) -> Option<Self>;
}

macro_rules! from_number_int {
    ($($t:ty),*) => {$(
        impl FromNumber for $t {
            fn from_i64(v: i64) -> Option<Self> { <$t>::try_from(v).ok() }
            fn from_u64(v: u64) -> Option<Self> { <$t>::try_from(v).ok() }
            fn from_f64(v: f64) -> Option<Self> {
                (v.fract() == 0.0 && v >= <$t>::MIN as f64 && v <= <$t>::MAX as f64)
                    .then_some(v as $t)
            }
        }
    )*};
}
from_number_int!(i32, u32);

impl FromNumber for f32 {
    fn from_i64(v: i64) -> Option<Self> {
        Some(v as f32)
    }
    fn from_u64(v: u64) -> Option<Self> {
        Some(v as f32)
    }
    fn from_f64(v: f64) -> Option<Self> {
        Some(v as f32)
    }
}

impl<'de, T: FromNumber> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        fn out_of_range<T, E: de::Error>(v: impl fmt::Display) -> E {
            E::custom(format!(
                "{v} is out of range for {}",
                std::any::type_name::<T>()
            ))
        }
        impl<T: FromNumber> Visitor<'_> for V<T> {
            type Value = Lenient<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Lenient<T>, E> {
                T::from_i64(v)
                    .map(Lenient)
                    .ok_or_else(|| out_of_range::<T, E>(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Lenient<T>, E> {
                T::from_u64(v)
                    .map(Lenient)
                    .ok_or_else(|| out_of_range::<T, E>(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Lenient<T>, E> {
                T::from_f64(v)
                    .map(Lenient)
                    .ok_or_else(|| out_of_range::<T, E>(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Lenient<T>, E> {
                let digits: String = v.chars().filter(|&c| c != '_').collect();
                digits
                    .trim()
                    .parse::<T>()
                    .map(Lenient)
                    .map_err(|_| E::custom(format!("'{v}' is not a number")))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// `deserialize_with` for numbers that accept Go-style `1_000_000`.
pub(crate) fn lenient<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromNumber,
{
    Lenient::<T>::deserialize(d).map(|v| v.0)
}
