//! Address families: which exist, which this OS has, and CPython's `address_type` inference.

use std::fmt;
use std::str::FromStr;

use crate::{Address, AddressError};

/// An address family of `multiprocessing.connection`.
///
/// Python spells these as the strings `'AF_INET'`, `'AF_UNIX'` and `'AF_PIPE'`; `Display` and
/// `FromStr` use the same spelling.
///
/// `Inet` covers IPv6 too: CPython has no `AF_INET6` family name of its own for `Client`
/// (gh-90966), and an IPv6 peer is still "a TCP host and port".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Family {
    /// TCP over IPv4 or IPv6 (`'AF_INET'`).
    Inet,
    /// Unix domain stream sockets, by path or Linux abstract name (`'AF_UNIX'`).
    Unix,
    /// Windows message-mode named pipes (`'AF_PIPE'`).
    Pipe,
}

impl Family {
    /// The name CPython uses for this family.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Inet => "AF_INET",
            Self::Unix => "AF_UNIX",
            Self::Pipe => "AF_PIPE",
        }
    }

    /// Whether this operating system has the family.
    pub const fn is_supported(self) -> bool {
        match self {
            Self::Inet => true,
            Self::Unix => cfg!(unix),
            Self::Pipe => cfg!(windows),
        }
    }

    /// `Ok(self)` if this operating system has the family, else
    /// [`AddressError::UnsupportedFamily`] (CPython's `_validate_family`).
    pub fn validate(self) -> Result<Self, AddressError> {
        if self.is_supported() {
            Ok(self)
        } else {
            Err(AddressError::UnsupportedFamily {
                family: self.as_str(),
            })
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Family {
    type Err = AddressError;

    /// Parses `AF_INET`, `AF_UNIX` or `AF_PIPE` (exactly as CPython spells them).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "AF_INET" => Ok(Self::Inet),
            "AF_UNIX" => Ok(Self::Unix),
            "AF_PIPE" => Ok(Self::Pipe),
            other => Err(AddressError::UnknownFamily {
                name: other.to_owned(),
            }),
        }
    }
}

/// The family of an address (CPython's `address_type`).
///
/// With an enum for addresses the answer is structural; for CPython's inference from a Python
/// `str` see [`Address::from_python_str`].
pub fn address_type(address: &Address) -> Family {
    address.family()
}

/// The family used when none is given (CPython's `default_family`): `AF_PIPE` on Windows,
/// `AF_UNIX` elsewhere.
pub const fn default_family() -> Family {
    if cfg!(windows) {
        Family::Pipe
    } else {
        Family::Unix
    }
}

/// The families this operating system has, in CPython's order (`families`):
/// `[AF_INET, AF_UNIX]` on Unix, `[AF_INET, AF_PIPE]` on Windows.
pub fn families() -> &'static [Family] {
    if cfg!(windows) {
        &[Family::Inet, Family::Pipe]
    } else {
        &[Family::Inet, Family::Unix]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in [Family::Inet, Family::Unix, Family::Pipe] {
            assert_eq!(f.as_str().parse::<Family>().unwrap(), f);
            assert_eq!(f.to_string(), f.as_str());
        }
    }

    #[test]
    fn unknown_family_is_named() {
        let err = "AF_FOO".parse::<Family>().unwrap_err();
        assert!(matches!(err, AddressError::UnknownFamily { ref name } if name == "AF_FOO"));
        assert!(
            "af_inet".parse::<Family>().is_err(),
            "names are case-sensitive, as in CPython"
        );
    }

    #[cfg(unix)]
    #[test]
    fn unix_families() {
        assert_eq!(default_family(), Family::Unix);
        assert_eq!(families(), &[Family::Inet, Family::Unix]);
        let err = Family::Pipe.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "Family AF_PIPE is not recognized on this platform"
        );
        assert!(Family::Unix.validate().is_ok());
        assert!(Family::Inet.validate().is_ok());
    }
}
