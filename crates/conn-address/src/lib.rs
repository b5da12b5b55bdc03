#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod address;
mod arbitrary;
mod error;
mod family;

pub use address::{Address, Host, MAX_ABSTRACT_NAME_LEN, MAX_PIPE_NAME_LEN, MAX_UNIX_PATH_LEN};
pub use arbitrary::{PrivateSocketDir, arbitrary_address};
pub use error::AddressError;
pub use family::{Family, address_type, default_family, families};
