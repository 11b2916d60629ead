//! RFC 7983 first-byte demultiplexing of the media port.
