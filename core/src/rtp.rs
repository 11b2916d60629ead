//! RTP packets (RFC 3550 section 5.1): a checked zero-copy view.
