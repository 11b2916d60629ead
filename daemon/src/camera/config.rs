//! `[[camera]]` tables of the config file (PROTOCOL.md section 7), checked at start: a bad
//! table is a bad setting, named in the message (exit 2).
//!
//! The URL's user and password become RTSP credentials and leave the URL: what is shown
//! anywhere (logs, `check-config`, the admin API, the trace) is [`CameraConfig::shown_url`],
//! with the userinfo replaced by `***`.

use std::fmt;
use std::path::Path;

use super::super::settings::SettingError;

/// How the camera sends RTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Interleaved in the RTSP TCP connection (RFC 2326 section 10.12): the default,
    /// through any NAT and firewall.
    Tcp,
    /// Separate UDP ports.
    Udp,
}

/// One `[[camera]]` table, checked.
#[derive(Clone)]
pub struct CameraConfig {
    /// Its id: the `user_id` it has in its channel.
    pub id: String,
    /// The channel it feeds.
    pub channel: String,
    /// The URL without userinfo, as the RTSP requests carry it.
    pub url: url::Url,
    /// From the URL's userinfo (percent-decoded); never shown.
    pub credentials: Option<(String, String)>,
    /// RTP transport.
    pub transport: Transport,
}

impl CameraConfig {
    /// The URL as it may be shown: any userinfo replaced by `***`.
    pub fn shown_url(&self) -> String {
        let s = self.url.as_str();
        match (&self.credentials, s.split_once("://")) {
            (Some(_), Some((scheme, rest))) => format!("{scheme}://***@{rest}"),
            _ => s.to_owned(),
        }
    }
}

impl fmt::Debug for CameraConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CameraConfig")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .field("url", &self.shown_url())
            .field("transport", &self.transport)
            .finish()
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    id: String,
    url: String,
    channel: String,
    transport: Option<String>,
}

#[derive(serde::Deserialize)]
struct File {
    #[serde(default)]
    camera: Vec<Table>,
}

/// The cameras of the config file at `path` (none when it does not exist).
pub fn read(path: &Path) -> Result<Vec<CameraConfig>, SettingError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(SettingError(format!(
                "LIVECHAT_CONFIG: cannot read {}: {e}",
                path.display()
            )));
        }
    };
    parse(&text)
}

/// The cameras of a config file's text.
pub fn parse(text: &str) -> Result<Vec<CameraConfig>, SettingError> {
    // The file as a whole was read by the settings; only the tables matter here. A table
    // that does not parse is named by its position (its URL may hold a password, so the
    // parser's message, which can quote the value, is not shown).
    let file: File = basic_toml::from_str(text).map_err(|e| {
        let msg = e.to_string();
        let shown = if msg.contains("rtsp") || msg.contains('@') {
            "not a table of id, url, channel and transport".to_owned()
        } else {
            msg
        };
        SettingError(format!("[[camera]]: {shown}"))
    })?;
    let max = livechat_core::config::MAX_CAMERAS;
    if file.camera.len() > max {
        return Err(SettingError(format!(
            "[[camera]]: {} tables, at most {max}",
            file.camera.len()
        )));
    }
    let mut out: Vec<CameraConfig> = Vec::new();
    for (i, t) in file.camera.into_iter().enumerate() {
        let name = format!("[[camera]] #{} (id {:?})", i + 1, t.id);
        let bad = |why: &str| SettingError(format!("{name}: {why}"));
        if !valid_id(&t.id) {
            return Err(bad("id must be 1 to 32 of [A-Za-z0-9_.-]"));
        }
        if !valid_id(&t.channel) {
            return Err(bad("channel must be 1 to 32 of [A-Za-z0-9_.-]"));
        }
        if out.iter().any(|c| c.id == t.id) {
            return Err(bad("id is used by another camera"));
        }
        let transport = match t.transport.as_deref() {
            None | Some("tcp") => Transport::Tcp,
            Some("udp") => Transport::Udp,
            Some(_) => return Err(bad("transport must be \"tcp\" or \"udp\"")),
        };
        // The parser's errors never quote the URL.
        let mut url = url::Url::parse(&t.url).map_err(|e| bad(&format!("url: {e}")))?;
        if url.scheme() != "rtsp" {
            return Err(bad("url must be rtsp://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("url has no host"));
        }
        let credentials = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
            };
            let user = decode(url.username()).map_err(|_| bad("url: user is not UTF-8"))?;
            let pass = decode(url.password().unwrap_or(""))
                .map_err(|_| bad("url: password is not UTF-8"))?;
            // Cannot fail for a URL with a host.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            Some((user, pass))
        };
        out.push(CameraConfig {
            id: t.id,
            channel: t.channel,
            url,
            credentials,
            transport,
        });
    }
    Ok(out)
}

/// 1 to 32 bytes of `[A-Za-z0-9_.-]` (PROTOCOL.md section 1's ids).
fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= livechat_core::config::MAX_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_read_and_credentials_leave_the_url() {
        let cams = parse(
            r#"
            http_addr = "127.0.0.1:1"
            [[camera]]
            id = "gate"
            url = "rtsp://us%40er:p%3Ass@192.0.2.20:554/stream1"
            channel = "yard"
            [[camera]]
            id = "bay"
            url = "rtsp://192.0.2.21/s"
            channel = "yard"
            transport = "udp"
            "#,
        )
        .expect("good tables");
        assert_eq!(cams.len(), 2);
        let gate = &cams[0];
        assert_eq!(
            gate.credentials,
            Some(("us@er".to_owned(), "p:ss".to_owned()))
        );
        assert_eq!(gate.url.as_str(), "rtsp://192.0.2.20:554/stream1");
        assert_eq!(gate.shown_url(), "rtsp://***@192.0.2.20:554/stream1");
        assert_eq!(gate.transport, Transport::Tcp);
        let shown = format!("{gate:?}");
        assert!(
            !shown.contains("p:ss") && !shown.contains("p%3Ass"),
            "{shown}"
        );
        assert_eq!(cams[1].credentials, None);
        assert_eq!(cams[1].shown_url(), "rtsp://192.0.2.21/s");
        assert_eq!(cams[1].transport, Transport::Udp);
        assert!(parse("x = 1").expect("no tables").is_empty());
    }

    #[test]
    fn bad_tables_are_named_and_never_show_the_password() {
        let table = |id: &str, url: &str, channel: &str, extra: &str| {
            format!("[[camera]]\nid = \"{id}\"\nurl = \"{url}\"\nchannel = \"{channel}\"\n{extra}")
        };
        let good = "rtsp://u:secret1@h/s";
        for (text, want) in [
            (table("bad id", good, "c", ""), "id must be"),
            (table("a", good, "", ""), "channel must be"),
            (
                table("a", "http://u:secret1@h/s", "c", ""),
                "url must be rtsp://",
            ),
            (table("a", "rtsp://u:secret1@[::1/s", "c", ""), "url:"),
            (
                table("a", good, "c", "transport = \"sctp\""),
                "transport must be",
            ),
            (table("a", good, "c", "colour = 1"), "[[camera]]"),
            (
                format!("{}{}", table("a", good, "c", ""), table("a", good, "d", "")),
                "#2 (id \"a\"): id is used by another camera",
            ),
        ] {
            let e = parse(&text).expect_err("a bad table").0;
            assert!(e.contains(want), "{e} should say {want}");
            assert!(!e.contains("secret1"), "{e}");
        }
    }
}
