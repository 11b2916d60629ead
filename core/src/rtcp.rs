//! RTCP packets (RFC 3550 section 6): compound walking and checked views.
