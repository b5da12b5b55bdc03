#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod blocking;
mod codec;
mod decoder;
mod error;
mod header;
#[cfg(feature = "pickle")]
pub mod pickle;
#[cfg(feature = "postcard")]
mod postcard;

pub use blocking::{
    AppendFn, FrameReader, MessageFn, MessageRead, with_frame_slices, write_frame, write_frames,
};
pub use codec::{Codec, CodecError, CodecOp};
pub use decoder::{Decoder, Need, UNLIMITED};

/// The decoder's buffer sizes, for the fuzz target's bounds and the benches; not part of the
/// API.
#[doc(hidden)]
pub mod tuning {
    pub use crate::decoder::{INITIAL_BUFFER, MIN_ROOM, READ_BUFFER};
}
pub use error::{FrameError, Unit};
pub use header::{
    Header, HeaderStatus, LONG_HEADER_LEN, LONG_MARKER, SHORT_HEADER_LEN, SHORT_MAX, decode_header,
    encode_frame_into,
};
#[cfg(feature = "pickle")]
pub use pickle::{Pickle, PickleProtocol};
#[cfg(feature = "postcard")]
pub use postcard::Postcard;

/// The codecs this build has, for glob re-exports: [`Pickle`] and [`PickleProtocol`] with the
/// `pickle` feature, [`Postcard`] with the `postcard` feature.
pub mod codecs {
    #[cfg(feature = "pickle")]
    pub use crate::pickle::{Pickle, PickleProtocol};
    #[cfg(feature = "postcard")]
    pub use crate::postcard::Postcard;
}
