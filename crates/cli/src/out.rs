//! Standard output. A command's result (`schedule`, `fetch`'s line) fails when the reader has
//! gone, and `main` ends the command quietly then, as `cat` or `ls` do when `| head` closes the
//! pipe. A server's status lines (where to reach it) are best effort: a script that read the
//! first line and closed the pipe must not stop the server.

use std::io::Write;

/// Writes a line of a command's result.
pub(crate) fn result(args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Writes a status line, if anyone reads it.
pub(crate) fn status(args: std::fmt::Arguments<'_>) {
    let _ = result(args);
}

/// Whether `e` is the reader of standard output having gone.
pub(crate) fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// A status line: `say!("gateway at http://{addr}/")`.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::out::status(format_args!($($arg)*))
    };
}
pub(crate) use say;
