//! The admin UI's files, compiled into the binary (no CDN, no build step): plain HTML, one
//! stylesheet and ES modules.

/// The page.
pub const INDEX: &str = include_str!("ui/index.html");

/// Assets by file name, with their content types.
const FILES: &[(&str, &str, &str)] = &[
    ("app.js", "text/javascript; charset=utf-8", include_str!("ui/app.js")),
    ("api.js", "text/javascript; charset=utf-8", include_str!("ui/api.js")),
    ("chart.js", "text/javascript; charset=utf-8", include_str!("ui/chart.js")),
    ("style.css", "text/css; charset=utf-8", include_str!("ui/style.css")),
];

/// The content type and text of asset `name`.
pub fn find(name: &str) -> Option<(&'static str, &'static str)> {
    FILES.iter().find(|(n, _, _)| *n == name).map(|(_, t, text)| (*t, *text))
}
