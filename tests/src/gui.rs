//! What a test needs to put a plugin's editor on a screen and use it the way a person would: an
//! X server of its own (Xvfb), a host window to embed the editor in, pictures of regions of that
//! window, and a pointer driven through the X server's XTEST extension (no extra program).
//!
//! The X client libraries a plugin's editor loads find their server through `DISPLAY`, which a
//! test must not change in its own process while other threads run: [`XServer::run_test`] runs
//! the test that opens an editor in a child process started with `DISPLAY` set, which also bounds
//! its time and keeps a crash in the graphics stack from taking the whole test binary down.

use anyhow::{anyhow, bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::xproto::{
    ConnectionExt as _, CreateWindowAux, ImageFormat, MapState, WindowClass, BUTTON_PRESS_EVENT,
    BUTTON_RELEASE_EVENT, MOTION_NOTIFY_EVENT,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

/// How long Xvfb may take to say which display it took.
const XVFB_START_LIMIT: Duration = Duration::from_secs(20);

/// The pointer button a left click presses.
pub const LEFT_BUTTON: u8 = 1;

/// An Xvfb server on a display it picked itself, stopped when dropped.
pub struct XServer {
    process: Child,
    /// `:N`, for `DISPLAY`.
    display: String,
}

impl XServer {
    /// Start Xvfb with one `width` x `height` screen of 24-bit colour. Xvfb picks a free display
    /// itself and writes its number to its standard output (`-displayfd 1`), so parallel runs
    /// never collide. (Present stays on: Xvfb 21 cannot turn it off, `-extension Present` is
    /// ignored.)
    pub fn start(width: u16, height: u16) -> Result<Self> {
        let xvfb = find_program("Xvfb").context(
            "Xvfb is not installed, so the editor cannot be put on a screen: install the Debian \
             packages `xvfb` and `libgl1-mesa-dri` (software OpenGL), e.g. \
             `apt-get install xvfb libgl1-mesa-dri`",
        )?;
        let (reader, writer) = std::io::pipe().context("Could not make a pipe for Xvfb")?;
        let screen = format!("{width}x{height}x24");
        // The command holds a copy of the pipe's write end until it is dropped: it must go before
        // the read below, or a failed start would never read as end of file.
        let process = Command::new(&xvfb)
            .args(["-displayfd", "1", "-screen", "0", &screen])
            .args(["-nolisten", "tcp", "-noreset"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::null())
            .spawn();
        let mut process =
            process.with_context(|| format!("Could not start '{}'", xvfb.display()))?;

        // Read on a thread, so an Xvfb that neither starts nor exits cannot hold the test up.
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(reader).read_line(&mut line);
            // The receiver is gone only when the test stopped waiting; nothing to tell then.
            let _ = sender.send(read.map(|_| line));
        });
        let line = match receiver.recv_timeout(XVFB_START_LIMIT) {
            Ok(Ok(line)) => line,
            Ok(Err(err)) => {
                stop(&mut process);
                bail!("Could not read Xvfb's display number: {err}");
            }
            Err(_) => {
                stop(&mut process);
                bail!("Xvfb did not report a display within {XVFB_START_LIMIT:?}");
            }
        };
        match line.trim().parse::<u32>() {
            Ok(number) => Ok(Self {
                process,
                display: format!(":{number}"),
            }),
            Err(_) => {
                let status = process.try_wait();
                stop(&mut process);
                bail!("Xvfb did not start (it said {line:?}; exit status {status:?})")
            }
        }
    }

    /// The display, `:N`.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Run the test named `test` of the current test binary in a child process on this display,
    /// with `marker_env` set to `1` so the test knows it is the child, and software OpenGL. Its
    /// output goes to the file `log` (an unread pipe could fill and stall it). Returns that
    /// output when the test passed; an error with the output when it failed, crashed or ran
    /// past `limit` (then it is killed).
    pub fn run_test(
        &self,
        test: &str,
        marker_env: &str,
        log: &Path,
        limit: Duration,
    ) -> Result<String> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("Could not make '{}'", dir.display()))?;
        }
        let file = std::fs::File::create(log)
            .with_context(|| format!("Could not write '{}'", log.display()))?;
        let exe = std::env::current_exe().context("Where is this test binary?")?;
        let mut child = Command::new(exe)
            .args([
                test,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("DISPLAY", &self.display)
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .env(marker_env, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone()?))
            .stderr(Stdio::from(file))
            .spawn()
            .with_context(|| format!("Could not start the test '{test}' in a child process"))?;

        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break Some(status);
            }
            if Instant::now() > deadline {
                stop(&mut child);
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = std::fs::read_to_string(log).unwrap_or_default();
        match status {
            Some(status) if status.success() => Ok(output),
            Some(status) => Err(anyhow!(
                "The test '{test}' failed on display {} ({status}); its output ({}):\n{output}",
                self.display,
                log.display()
            )),
            None => Err(anyhow!(
                "The test '{test}' ran past its {limit:?} and was stopped; its output ({}):\n{output}",
                log.display()
            )),
        }
    }
}

impl Drop for XServer {
    fn drop(&mut self) {
        stop(&mut self.process);
    }
}

/// Kill a child process and reap it; one that already ended is only reaped.
fn stop(child: &mut Child) {
    // Either may fail only because the process is already gone, which is the goal.
    let _ = child.kill();
    let _ = child.wait();
}

/// `name` in one of the `PATH` directories.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A rectangle of a window, in pixels from its top-left corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub x: u16,
    pub y: u16,
    pub width: u16,
    pub height: u16,
}

/// An RGB picture, 8 bits per channel, rows top to bottom.
#[derive(Clone)]
pub struct Picture {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

impl Picture {
    /// How much the picture varies: the mean absolute deviation from its mean colour, per
    /// channel, 0–255. A blank (one-colour) picture has 0.
    pub fn deviation(&self) -> f64 {
        let n = (self.width * self.height) as f64;
        if n == 0.0 {
            return 0.0;
        }
        let mut mean = [0.0; 3];
        for pixel in self.rgb.chunks_exact(3) {
            (0..3).for_each(|c| mean[c] += f64::from(pixel[c]) / n);
        }
        let total: f64 = self
            .rgb
            .chunks_exact(3)
            .map(|p| {
                (0..3)
                    .map(|c| (f64::from(p[c]) - mean[c]).abs())
                    .sum::<f64>()
            })
            .sum();
        total / (3.0 * n)
    }

    /// The mean absolute difference to `other` per channel, 0–255; `f64::INFINITY` when the
    /// sizes differ.
    pub fn difference(&self, other: &Picture) -> f64 {
        if (self.width, self.height) != (other.width, other.height) {
            return f64::INFINITY;
        }
        let total: f64 = self
            .rgb
            .iter()
            .zip(&other.rgb)
            .map(|(a, b)| f64::from(a.abs_diff(*b)))
            .sum();
        total / self.rgb.len().max(1) as f64
    }

    /// Write the picture as a binary PPM (any image viewer reads it), for a person to look at
    /// when a test fails.
    pub fn write_ppm(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("Could not write '{}'", path.display()))?,
        );
        write!(file, "P6\n{} {}\n255\n", self.width, self.height)?;
        file.write_all(&self.rgb)?;
        file.flush()?;
        Ok(())
    }
}

/// A connection to an X server's first screen, with the XTEST extension to move the pointer and
/// press its buttons.
pub struct Screen {
    conn: RustConnection,
    root: u32,
    black: u32,
}

impl Screen {
    /// Connect to `display` (`:N`). Fails unless the screen has 32 bits per pixel (24-bit colour),
    /// which [`HostWindow::grab`] reads, and the server has XTEST.
    pub fn connect(display: &str) -> Result<Self> {
        let (conn, screen_num) = x11rb::connect(Some(display))
            .with_context(|| format!("Could not connect to the X server {display}"))?;
        let screen = &conn.setup().roots[screen_num];
        let (root, black, depth) = (screen.root, screen.black_pixel, screen.root_depth);
        let bits_per_pixel = conn
            .setup()
            .pixmap_formats
            .iter()
            .find(|f| f.depth == depth)
            .map(|f| f.bits_per_pixel);
        if bits_per_pixel != Some(32) {
            bail!(
                "Expected 32 bits per pixel on {display}, got {bits_per_pixel:?} (depth {depth})"
            );
        }
        if conn
            .extension_information(x11rb::protocol::xtest::X11_EXTENSION_NAME)?
            .is_none()
        {
            bail!("The X server {display} has no XTEST extension to drive the pointer with");
        }
        conn.xtest_get_version(2, 2)?
            .reply()
            .context("XTEST did not answer")?;
        Ok(Self { conn, root, black })
    }

    /// Make a black top-level window of `width` x `height` at (`x`, `y`) of the screen and show
    /// it, as a host makes the window it embeds a plugin's editor in. There is no window manager
    /// on a test server, so the window stays exactly there. It is destroyed when dropped.
    pub fn create_window(&self, x: i16, y: i16, width: u16, height: u16) -> Result<HostWindow<'_>> {
        let id = self.conn.generate_id()?;
        self.conn.create_window(
            x11rb::COPY_DEPTH_FROM_PARENT,
            id,
            self.root,
            x,
            y,
            width,
            height,
            0,
            WindowClass::INPUT_OUTPUT,
            x11rb::COPY_FROM_PARENT,
            &CreateWindowAux::new().background_pixel(self.black),
        )?;
        let window = HostWindow {
            screen: self,
            id,
            x,
            y,
        };
        self.conn.map_window(id)?;
        self.conn.sync()?;
        let attributes = self.conn.get_window_attributes(id)?.reply()?;
        if attributes.map_state != MapState::VIEWABLE {
            bail!(
                "The host window is not viewable after mapping it ({:?})",
                attributes.map_state
            );
        }
        Ok(window)
    }

    /// Move the pointer to (`x`, `y`) of the screen, as a mouse would.
    pub fn move_pointer(&self, x: i16, y: i16) -> Result<()> {
        // Detail 0: absolute coordinates on `root`'s screen.
        self.conn.xtest_fake_input(
            MOTION_NOTIFY_EVENT,
            0,
            x11rb::CURRENT_TIME,
            self.root,
            x,
            y,
            0,
        )?;
        self.conn.sync()?;
        Ok(())
    }

    /// Press (`down`) or release a pointer button, where the pointer is.
    pub fn button(&self, button: u8, down: bool) -> Result<()> {
        let event = if down {
            BUTTON_PRESS_EVENT
        } else {
            BUTTON_RELEASE_EVENT
        };
        self.conn
            .xtest_fake_input(event, button, x11rb::CURRENT_TIME, x11rb::NONE, 0, 0, 0)?;
        self.conn.sync()?;
        Ok(())
    }

    /// The pixels of a rectangle of the screen (the root window: what a person sees, child
    /// windows included), read with a plain `GetImage`.
    pub fn grab(&self, x: i16, y: i16, width: u16, height: u16) -> Result<Picture> {
        let image = self
            .conn
            .get_image(ImageFormat::Z_PIXMAP, self.root, x, y, width, height, !0)?
            .reply()
            .context("GetImage failed")?;
        let (width, height) = (usize::from(width), usize::from(height));
        if image.data.len() != 4 * width * height {
            bail!(
                "GetImage returned {} bytes for {width} x {height} pixels at 32 bits",
                image.data.len()
            );
        }
        // Little-endian BGRX.
        let rgb = image
            .data
            .chunks_exact(4)
            .flat_map(|p| [p[2], p[1], p[0]])
            .collect();
        Ok(Picture { width, height, rgb })
    }
}

/// A host's top-level window on a [`Screen`]; coordinates are relative to its top-left corner.
pub struct HostWindow<'s> {
    screen: &'s Screen,
    id: u32,
    x: i16,
    y: i16,
}

impl HostWindow<'_> {
    /// The X11 window ID, which a CLAP host passes to `gui.set_parent`.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The pixels of `region` of the window, as they are on the screen.
    pub fn grab(&self, region: Region) -> Result<Picture> {
        let (x, y) = self.to_screen(region.x, region.y)?;
        self.screen.grab(x, y, region.width, region.height)
    }

    /// Move the pointer to (`x`, `y`) of the window.
    pub fn move_pointer(&self, x: u16, y: u16) -> Result<()> {
        let (x, y) = self.to_screen(x, y)?;
        self.screen.move_pointer(x, y)
    }

    /// Press (`down`) or release a pointer button, where the pointer is.
    pub fn button(&self, button: u8, down: bool) -> Result<()> {
        self.screen.button(button, down)
    }

    /// The windows inside this one: an embedded editor's window while it is there.
    pub fn children(&self) -> Result<Vec<u32>> {
        let tree = self.screen.conn.query_tree(self.id)?.reply()?;
        Ok(tree.children)
    }

    fn to_screen(&self, x: u16, y: u16) -> Result<(i16, i16)> {
        let x = i16::try_from(i32::from(self.x) + i32::from(x))?;
        let y = i16::try_from(i32::from(self.y) + i32::from(y))?;
        Ok((x, y))
    }
}

impl Drop for HostWindow<'_> {
    fn drop(&mut self) {
        // A server that is gone took the window with it: nothing left to do then.
        let _ = self.screen.conn.destroy_window(self.id);
        let _ = self.screen.conn.sync();
    }
}
