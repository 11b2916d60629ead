//! Floor control (3GPP TS 24.380 section 6.3), one machine per channel.
