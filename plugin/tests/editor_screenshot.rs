//! The editor in a real window: an X server (Xvfb) with Mesa's software OpenGL, the very
//! window nice-plug-egui opens in a host, the engine running the embedded demo clip in real time
//! behind it. The test grabs the screen, writes it as a PNG and checks that it shows the editor:
//! not blank, and the regions with the controls match the committed reference screenshot
//! (`docs/editor.png`) within a tolerance.
//!
//! `RESTYLE_UPDATE_SCREENSHOT=1 cargo test -p restyle --test editor_screenshot` rewrites the
//! reference after a deliberate change to the editor's look.
//!
//! Needs the Debian packages `xvfb` and `libgl1-mesa-dri` (and the X client libraries the editor
//! links to at run time: `libx11-6`, `libxcursor1`, `libxcb1`, `libgl1`); without Xvfb the test
//! fails and says so.

mod editor_host;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nice_plug::context::gui::GuiContext;
use nice_plug::editor::{Editor, EditorHandle};
use nice_plug::prelude::*;
use restyle::editor::{self, EditorSize};
use restyle::engine::{Engine, EngineConfig, LatencyMode, Pacing};
use restyle::stats::Status;
use std::sync::atomic::Ordering::Relaxed;

/// The editor's default size: the X screen is made exactly this big, so the screenshot is the
/// editor and nothing else.
const WIDTH: u16 = editor::DEFAULT_SIZE.width as u16;
const HEIGHT: u16 = editor::DEFAULT_SIZE.height as u16;
/// Set in the child process that opens the editor window.
const CHILD_ENV: &str = "RESTYLE_EDITOR_WINDOW_CHILD";
/// How long the engine plays into the editor before the screenshot, so the spectrogram fills.
const SETTLE: Duration = Duration::from_secs(5);
const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/editor.png");

/// An RGB picture.
struct Picture {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

impl Picture {
    fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = 3 * (y * self.width + x);
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Mean colour and how much the pixels vary (mean absolute deviation per channel) in a region.
    fn stats(&self, (x0, y0, x1, y1): Region) -> ([f64; 3], f64) {
        let mut sum = [0.0; 3];
        let n = ((x1 - x0) * (y1 - y0)) as f64;
        for y in y0..y1 {
            for x in x0..x1 {
                let p = self.pixel(x, y);
                (0..3).for_each(|c| sum[c] += p[c] as f64);
            }
        }
        let mean = sum.map(|s| s / n);
        let mut dev = 0.0;
        for y in y0..y1 {
            for x in x0..x1 {
                let p = self.pixel(x, y);
                dev += (0..3).map(|c| (p[c] as f64 - mean[c]).abs()).sum::<f64>() / 3.0;
            }
        }
        (mean, dev / n)
    }

    /// Mean absolute difference per channel to `other` over a region, 0–255.
    fn difference(&self, other: &Picture, (x0, y0, x1, y1): Region) -> f64 {
        let mut sum = 0.0;
        for y in y0..y1 {
            for x in x0..x1 {
                let (a, b) = (self.pixel(x, y), other.pixel(x, y));
                sum += (0..3).map(|c| (a[c] as f64 - b[c] as f64).abs()).sum::<f64>() / 3.0;
            }
        }
        sum / ((x1 - x0) * (y1 - y0)) as f64
    }

    fn write_png(&self, path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.write_header().unwrap().write_image_data(&self.rgb).unwrap();
    }

    fn read_png(path: &Path) -> Picture {
        let file = std::fs::File::open(path).unwrap_or_else(|e| {
            panic!("cannot read the reference screenshot {}: {e} (RESTYLE_UPDATE_SCREENSHOT=1 writes it)", path.display())
        });
        let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let channels = info.color_type.samples();
        let rgb = buf[..info.buffer_size()].chunks(channels).flat_map(|p| [p[0], p[1], p[2]]).collect();
        Picture { width: info.width as usize, height: info.height as usize, rgb }
    }
}

/// `(x0, y0, x1, y1)` in pixels, end exclusive.
type Region = (usize, usize, usize, usize);

/// Regions whose content depends neither on the audio nor on the model pack, by name: they must
/// match the reference. (Coordinates for the editor's default 920 x 600 layout.)
const STATIC_REGIONS: [(&str, Region); 3] = [
    ("title, pack selector and bypass", (16, 16, 904, 52)),
    ("style mix knob", (650, 100, 840, 250)),
    ("gain knobs", (650, 270, 840, 370)),
];

/// Regions that must be drawn (not empty) but are not compared: the style controls depend on the
/// pack's styles, the rest on the live audio.
const LIVE_REGIONS: [(&str, Region); 5] = [
    ("style buttons", (100, 96, 590, 130)),
    ("blend knobs", (100, 160, 590, 300)),
    ("input meter", (16, 90, 66, 380)),
    ("output meter", (854, 90, 904, 380)),
    ("spectrogram", (60, 400, 904, 560)),
];

/// Opens the editor at `size` on a fresh Xvfb screen of the same size, lets the demo play into
/// it, and returns the screenshot (also written to `target/tmp/<name>`).
fn render(size: EditorSize, name: &str) -> (Picture, PathBuf) {
    // One window at a time: software OpenGL is heavy on a small machine, and Xvfb inherits the
    // pipe it reports its display on.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let xvfb = find_program("Xvfb").unwrap_or_else(|| {
        panic!(
            "Xvfb is not installed, so the editor cannot be rendered: install the Debian package \
             `xvfb` (and `libgl1-mesa-dri` for software OpenGL), e.g. `apt-get install xvfb libgl1-mesa-dri`"
        )
    });
    let mut server = XServer::start(&xvfb, size.width, size.height);
    // Xvfb puts the pointer in the middle of the screen: park it where nothing reacts to hovering.
    park_pointer(&server.display);
    // The window process's output goes to a file: an unread pipe could fill and stall it.
    let log_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut window = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "editor_window_for_the_screenshot", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{}x{}", size.width, size.height))
        .env("DISPLAY", &server.display)
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("cannot start the editor window process");

    let shot = grab_when_drawn(&server.display, &mut window, name);
    let _ = window.kill();
    let _ = window.wait();
    server.stop();
    let shot = shot.unwrap_or_else(|why| {
        let output = std::fs::read_to_string(&log_path).unwrap_or_default();
        panic!("{why}\n--- the editor window process said ---\n{output}")
    });
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    shot.write_png(&out);
    println!("screenshot: {}", out.display());
    (shot, out)
}

#[test]
fn the_editor_renders_under_xvfb_and_matches_the_reference() {
    let (shot, out) = render(editor::DEFAULT_SIZE, "editor.png");
    assert_eq!((shot.width, shot.height), (WIDTH as usize, HEIGHT as usize));

    // Not blank: the picture has structure everywhere it should.
    let (_, whole_dev) = shot.stats((0, 0, shot.width, shot.height));
    assert!(whole_dev > 4.0, "the screenshot is (nearly) blank: deviation {whole_dev:.2} (see {})", out.display());
    for (name, region) in STATIC_REGIONS.iter().chain(&LIVE_REGIONS) {
        let (_, dev) = shot.stats(*region);
        assert!(dev > 1.0, "the {name} region is empty (deviation {dev:.2}; see {})", out.display());
    }
    // Live audio reached the editor: the spectrogram is lit by the demo clip.
    let (spectrum_mean, _) = shot.stats(LIVE_REGIONS[4].1);
    let (background, _) = shot.stats((0, 575, 10, 600));
    assert!(
        spectrum_mean.iter().zip(&background).map(|(a, b)| a - b).sum::<f64>() > 15.0,
        "the spectrogram shows no signal (mean {spectrum_mean:?}; see {})",
        out.display()
    );

    let reference_path = Path::new(REFERENCE);
    if std::env::var_os("RESTYLE_UPDATE_SCREENSHOT").is_some() {
        shot.write_png(reference_path);
        println!("reference updated: {}", reference_path.display());
        return;
    }
    let reference = Picture::read_png(reference_path);
    assert_eq!(
        (reference.width, reference.height),
        (shot.width, shot.height),
        "the screenshot and the reference differ in size (see {})",
        out.display()
    );
    for (name, region) in STATIC_REGIONS {
        let difference = shot.difference(&reference, region);
        println!("{name}: {difference:.3} from the reference");
        // Font rasterisation and anti-aliasing may differ a little between Mesa versions.
        assert!(
            difference < 6.0,
            "the {name} region differs from the reference by {difference:.2} per pixel (limit 6); \
             compare {} with {}",
            out.display(),
            reference_path.display()
        );
    }
}

#[test]
fn the_editor_lays_out_at_its_smallest_and_at_a_large_size() {
    for (size, name) in [(editor::MIN_SIZE, "editor-smallest.png"), (EditorSize { width: 1280, height: 820 }, "editor-large.png")] {
        let (shot, out) = render(size, name);
        let (w, h) = (shot.width, shot.height);
        assert_eq!((w, h), (size.width as usize, size.height as usize));
        // The title at the top left, the output meter at the right edge, the spectrogram above
        // the status line: all drawn, so the layout fills the window.
        let regions = [
            ("title", (16, 16, 300, 52)),
            ("output meter", (w - 66, 100, w - 16, h / 2)),
            ("spectrogram", (w / 2, h - 120, w - 20, h - 50)),
        ];
        for (what, region) in regions {
            let (_, dev) = shot.stats(region);
            assert!(dev > 1.0, "{size:?}: the {what} is not drawn (see {})", out.display());
        }
        // The status line runs along the whole bottom edge.
        let (mean, _) = shot.stats((w - 300, h - 4, w - 30, h - 1));
        let panel = [0x1a as f64, 0x1d as f64, 0x24 as f64];
        assert!(
            mean.iter().zip(&panel).all(|(a, b)| (a - b).abs() < 8.0),
            "{size:?}: no status line at the bottom right ({mean:?}; see {})",
            out.display()
        );
    }
}

/// Not a test of its own: the process the screenshot test starts to open the editor window.
#[test]
#[ignore = "started by the_editor_renders_under_xvfb_and_matches_the_reference"]
fn editor_window_for_the_screenshot() {
    let Some(size) = std::env::var(CHILD_ENV).ok() else { return };
    let shared = editor_host::shared();
    let params = shared.params.clone();
    // The size the window opens at, as a host restores it from the plugin state.
    let (width, height) = size.split_once('x').expect("WIDTHxHEIGHT");
    params.editor_state.store(EditorSize { width: width.parse().unwrap(), height: height.parse().unwrap() });
    // The engine and the model pack, made as `Restyle::activate` makes them: the embedded
    // default pack (or, without the ONNX Runtime library, a passthrough that says why).
    let loaded = restyle::loader::load_default(restyle::onnx::Provider::Cpu);
    let config = EngineConfig { sample_rate: 48_000, channels: 2, max_block: 256, pacing: Pacing::RealTime, latency_mode: LatencyMode::Lowest };
    let mut engine = Engine::for_plugin(config, loaded.models, shared.stats.clone(), Default::default()).expect("the engine");
    params.style_names.set(engine.styles());
    *shared.status.write().unwrap() = Status {
        model: engine.model_name().to_owned(),
        provider: loaded.provider.to_owned(),
        styles: engine.styles().to_vec(),
        latency_mode: config.latency_mode,
        error: loaded.problem,
    };
    shared.stats.latency_samples.store(engine.latency() as u32, Relaxed);
    shared.stats.sample_rate.store(48_000, Relaxed);

    // A session as a user might leave it: the second style chosen, two others blended in, some mix.
    editor_host::host_sets(&params.style, params.style.preview_normalized(1));
    editor_host::host_sets(&params.blends[0].amount, 0.35);
    editor_host::host_sets(&params.blends[2].amount, 0.2);
    editor_host::host_sets(&params.mix, 0.8);
    editor_host::host_sets(&params.output_gain, params.output_gain.preview_normalized(util::db_to_gain(-1.5)));

    // The engine plays the demo clip (on both channels) in real time, as in a host.
    let audio_params = params.clone();
    std::thread::spawn(move || {
        let clip = restyle::demo::clip().expect("the demo clip");
        let samples = &clip.channels[0];
        let block = 256;
        let start = Instant::now();
        let (mut left, mut right) = (vec![0.0f32; block], vec![0.0f32; block]);
        for k in 0.. {
            let at = (k * block) % (samples.len() - block);
            left.copy_from_slice(&samples[at..at + block]);
            right.copy_from_slice(&samples[at..at + block]);
            let controls = audio_params.controls(engine.styles().len());
            engine.process(&mut [&mut left[..], &mut right[..]], &controls);
            let due = start + Duration::from_secs_f64(((k + 1) * block) as f64 / 48_000.0);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
    });

    let editor = editor::create(params.clone(), shared.stats.clone(), shared.status.clone(), shared.choose_pack.clone()).unwrap();
    let host = Arc::new(editor_host::FakeHost::new(&params));
    let spawned = editor.spawn(None, false, Some(1.0), GuiContext::new(host), None).expect("cannot open the editor window");
    <<editor::RestyleEditor as Editor>::Handle as EditorHandle>::run_until_closed(spawned.window).expect("the editor window failed");
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// An Xvfb server on a free display, stopped when dropped.
struct XServer {
    process: Child,
    display: String,
}

impl XServer {
    /// Starts Xvfb with a screen of `width` x `height`; Xvfb picks a free display itself and
    /// writes its number to a pipe (`-displayfd`), so parallel runs never collide.
    fn start(xvfb: &Path, width: u32, height: u32) -> Self {
        use std::io::{BufRead, BufReader};
        use std::os::fd::FromRawFd;

        let mut fds = [0 as libc::c_int; 2];
        // Not close-on-exec: Xvfb inherits the write end.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "cannot make a pipe for Xvfb");
        let (read_end, write_end) = (fds[0], fds[1]);
        let screen = format!("{width}x{height}x24");
        let process = Command::new(xvfb)
            .args(["-displayfd", &write_end.to_string(), "-screen", "0", &screen, "-nolisten", "tcp", "-noreset"])
            // Without Present, baseview paces frames with its own timer: with it, a first
            // present notification that Xvfb never answers can leave the window undrawn.
            .args(["-extension", "Present"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        unsafe { libc::close(write_end) };
        let mut process = process.unwrap_or_else(|e| panic!("cannot start {}: {e}", xvfb.display()));
        let mut line = String::new();
        let read = BufReader::new(unsafe { std::fs::File::from_raw_fd(read_end) }).read_line(&mut line);
        match (read, line.trim().parse::<u32>()) {
            (Ok(_), Ok(number)) => Self { process, display: format!(":{number}") },
            _ => {
                let status = process.try_wait();
                let _ = process.kill();
                panic!("Xvfb did not start (it said {line:?}; exit status {status:?})");
            }
        }
    }

    fn stop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for XServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until the editor has drawn, lets the audio play for [`SETTLE`], then grabs the screen.
fn grab_when_drawn(display: &str, window: &mut Child, name: &str) -> Result<Picture, String> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut drawn_at = None;
    let mut last: Option<Picture> = None;
    loop {
        if let Ok(Some(status)) = window.try_wait() {
            return Err(format!("the editor window process ended early ({status})"));
        }
        if Instant::now() > deadline {
            let mut why = "the editor did not draw within 90 s".to_owned();
            if let Some(last) = last {
                let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("timed-out-{name}"));
                last.write_png(&path);
                why += &format!(" (the screen then: {})", path.display());
            }
            return Err(why);
        }
        std::thread::sleep(Duration::from_millis(250));
        let shot = grab(display)?;
        // The title is drawn in the accent colour: the editor is up once it shows.
        let drawn = shot.stats(STATIC_REGIONS[0].1).1 > 1.0;
        match drawn_at {
            None if drawn => drawn_at = Some(Instant::now()),
            Some(at) if at.elapsed() >= SETTLE => return Ok(shot),
            _ => {}
        }
        last = Some(shot);
    }
}

fn park_pointer(display: &str) {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::ConnectionExt;
    let (conn, screen_num) = x11rb::connect(Some(display)).unwrap_or_else(|e| panic!("cannot connect to {display}: {e}"));
    let root = conn.setup().roots[screen_num].root;
    conn.warp_pointer(x11rb::NONE, root, 0, 0, 0, 0, 3, 3).unwrap();
    x11rb::wrapper::ConnectionExt::sync(&conn).unwrap();
}

/// The X screen's pixels (the root window), read with a plain X11 `GetImage`.
fn grab(display: &str) -> Result<Picture, String> {
    use x11rb::connection::Connection;
    use x11rb::protocol::xproto::{ConnectionExt, ImageFormat};

    let (conn, screen_num) = x11rb::connect(Some(display)).map_err(|e| format!("cannot connect to {display}: {e}"))?;
    let screen = &conn.setup().roots[screen_num];
    let (width, height) = (screen.width_in_pixels, screen.height_in_pixels);
    let bits_per_pixel = conn
        .setup()
        .pixmap_formats
        .iter()
        .find(|f| f.depth == screen.root_depth)
        .map(|f| f.bits_per_pixel)
        .ok_or("no pixmap format for the root depth")?;
    if bits_per_pixel != 32 {
        return Err(format!("expected a 32-bit X screen, got {bits_per_pixel} bits per pixel"));
    }
    let image = conn
        .get_image(ImageFormat::Z_PIXMAP, screen.root, 0, 0, width, height, !0)
        .map_err(|e| e.to_string())?
        .reply()
        .map_err(|e| format!("GetImage failed: {e}"))?;
    // Little-endian BGRX.
    let rgb = image.data.chunks_exact(4).flat_map(|p| [p[2], p[1], p[0]]).collect();
    Ok(Picture { width: width as usize, height: height as usize, rgb })
}
