//! `IntoAddress`: what `Listener` and `Client` accept as an address.

use std::net::{IpAddr, SocketAddr};

use conn_address::{Address, AddressError, Family, Host};

/// Anything that names an address: an [`Address`], its text form (`"127.0.0.1:6000"`,
/// `"[::1]:6000"`, `"localhost:6000"`, `"/tmp/sock"`, `"@abstract"`), a `SocketAddr`, or a
/// Python-style `(host, port)` tuple.
pub trait IntoAddress {
    /// The address, or why the value is not one.
    fn into_address(self) -> Result<Address, AddressError>;
}

impl IntoAddress for Address {
    fn into_address(self) -> Result<Address, AddressError> {
        self.validate()?;
        Ok(self)
    }
}

impl IntoAddress for &Address {
    fn into_address(self) -> Result<Address, AddressError> {
        self.clone().into_address()
    }
}

impl IntoAddress for &str {
    fn into_address(self) -> Result<Address, AddressError> {
        self.parse()
    }
}

impl IntoAddress for String {
    fn into_address(self) -> Result<Address, AddressError> {
        self.parse()
    }
}

impl IntoAddress for SocketAddr {
    fn into_address(self) -> Result<Address, AddressError> {
        Ok(Address::from(self))
    }
}

impl IntoAddress for (IpAddr, u16) {
    fn into_address(self) -> Result<Address, AddressError> {
        Ok(Address::from(self))
    }
}

impl IntoAddress for (&str, u16) {
    /// Python's `('host', port)`.
    fn into_address(self) -> Result<Address, AddressError> {
        Ok(Address::inet(Host::parse(self.0)?, self.1))
    }
}

/// CPython's `family` argument: `Ok` if no family was asked for, or if this OS has it and the
/// address belongs to it.
pub fn check_family(family: Option<Family>, address: &Address) -> Result<(), AddressError> {
    let Some(family) = family else {
        return Ok(());
    };
    family.validate()?;
    if family == address.family() {
        Ok(())
    } else {
        Err(AddressError::FamilyMismatch {
            family: family.as_str(),
            address: address.to_string(),
        })
    }
}
