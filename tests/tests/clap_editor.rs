//! The editor as a CLAP host sees it: the test host embeds `Restyle.clap`'s editor in an X11
//! window of its own on an Xvfb screen, changes Style Mix the way a host does and watches the
//! knob follow, then drags the knob with the pointer and checks that the edit reaches the host as
//! parameter events inside a gesture.
//!
//! Needs the bundle (`cargo xtask bundle restyle --release`) and the Debian packages `xvfb` and
//! `libgl1-mesa-dri`; without Xvfb the test fails and says so. Pictures of each step go to
//! `target/tmp/clap_editor/` (binary PPM).

use anyhow::{bail, ensure, Context, Result};
use clack_extensions::gui::GuiApiType;
use restyle_tests::contract::{self, clap_param_id};
use restyle_tests::gui::{HostWindow, Picture, Region, Screen, XServer, LEFT_BUTTON};
use restyle_tests::host::{test_bundle, ParamOutput, PluginUnderTest};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Set in the child process that opens the editor (see [`XServer::run_test`]).
const CHILD_ENV: &str = "RESTYLE_CLAP_EDITOR_CHILD";
/// The test the child process runs.
const CHILD_TEST: &str = "editor_session_on_the_test_display";
/// Times the editor is opened and closed again after the first session, as a user looking at
/// several plugins in turn does: each must draw, and each close must take its window down.
const REOPENINGS: usize = 4;
/// The most the child may take, start to end: a hung editor fails the test instead of hanging it.
const CHILD_LIMIT: Duration = Duration::from_secs(240);

/// The test screen: the editor's window and some room around it.
const SCREEN_SIZE: (u16, u16) = (1024, 700);
/// Where the host window sits on the screen: away from the corner, so a mix-up of window and
/// screen coordinates shows.
const WINDOW_AT: (i16, i16) = (40, 30);
/// Where the pointer waits while it must not touch the editor: outside the host window.
const POINTER_PARKED: (i16, i16) = (2, 2);

/// The editor's size at scale 1 when no size was saved (`editor::DEFAULT_SIZE`). The
/// coordinates below are for it.
const EDITOR_SIZE: (u32, u32) = (920, 600);
/// The centre of the Style Mix dial at that size, from `Layout::new` and `EditorView::mix_card`
/// (plugin/src/editor.rs): the "Mix & gain" card spans x 609.6–834, y 66–380; inside it the knob's
/// rectangle starts at (623.6, 98), 196.4 wide and 160.8 high, and its dial is 124.8 across,
/// centred at (721.8, 160.4). `docs/editor.png` shows it.
const MIX_DIAL_CENTER: (u16, u16) = (722, 160);
/// The dial and the value printed under it (to y ≈ 259).
const MIX_KNOB: Region = Region {
    x: 655,
    y: 94,
    width: 134,
    height: 170,
};

/// The Style Mix value the host sets (100 % is the default): a quarter of the arc instead of all
/// of it, and "25 %" instead of "100 %".
const HOST_MIX: f64 = 0.25;
/// Mean difference per channel (0–255) over [`MIX_KNOB`] above which its picture has changed:
/// three-quarters of the arc going dark moves it by about 10.
const KNOB_CHANGED: f64 = 3.0;
/// ... and below which two pictures of it are the same (anti-aliasing may differ by a level).
const KNOB_SAME: f64 = 0.5;
/// Mean deviation per channel over the whole editor above which it is drawn, not blank.
const DRAWN: f64 = 4.0;

/// Pixels the pointer moves down, in steps of [`DRAG_STEP`], before the drag is under way: more
/// than egui's 6-point click distance, so the press becomes a drag.
const DRAG_START: u16 = 12;
const DRAG_STEP: u16 = 8;
/// Steps after the plugin has begun its gesture; each one must bring the host a new value.
const DRAG_STEPS: u16 = 5;

/// How long the first picture may take (software OpenGL on a small machine compiles shaders).
const DRAW_LIMIT: Duration = Duration::from_secs(90);
/// How long any later reaction may take.
const REACTION_LIMIT: Duration = Duration::from_secs(15);
/// How often the test serves the plugin and looks at the screen while it waits: about half a
/// frame (the editor repaints every 33 ms).
const POLL: Duration = Duration::from_millis(15);
/// Two pictures this far apart that are the same mean the editor has settled: two frames.
const STEADY_GAP: Duration = Duration::from_millis(70);

/// Where pictures and the child's output go.
fn out_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("clap_editor")
}

#[test]
fn editor_shows_host_changes_and_reports_its_edits_to_the_host() -> Result<()> {
    let started = Instant::now();
    let server = XServer::start(SCREEN_SIZE.0, SCREEN_SIZE.1)?;
    let log = out_dir().join("child.log");
    let output = server.run_test(CHILD_TEST, CHILD_ENV, &log, CHILD_LIMIT)?;
    println!("{output}");
    println!(
        "editor test on display {}: {:.1} s in all",
        server.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Not a test of its own: what [`editor_shows_host_changes_and_reports_its_edits_to_the_host`]
/// runs in a child process with `DISPLAY` set to its Xvfb server.
#[test]
#[ignore = "run by editor_shows_host_changes_and_reports_its_edits_to_the_host on its own X server"]
fn editor_session_on_the_test_display() -> Result<()> {
    if std::env::var_os(CHILD_ENV).is_none() {
        bail!("this runs inside editor_shows_host_changes_and_reports_its_edits_to_the_host, on its X server: run that");
    }
    let display = std::env::var("DISPLAY").context("the child runs with DISPLAY set")?;
    let screen = Screen::connect(&display)?;
    screen.move_pointer(POINTER_PARKED.0, POINTER_PARKED.1)?;
    let bundle = test_bundle()?;
    let plugin = bundle.instantiate(contract::CLAP_ID)?;

    let mut session = Session::open(plugin, &screen)?;
    session.host_changes_show_on_the_mix_knob()?;
    session.a_drag_on_the_mix_knob_reaches_the_host()?;
    let mut plugin = session.close()?;
    for _ in 0..REOPENINGS {
        plugin = Session::open(plugin, &screen)?.close()?;
    }
    // The process exits right after the last `gui.destroy`, as a host may: a window thread
    // still tearing down OpenGL then would crash it.
    drop(plugin);
    Ok(())
}

/// A plugin with its editor open in a host window, and everything it told the host so far.
/// (Dropped without [`close`][Session::close], the plugin goes before the window it is in.)
struct Session<'s> {
    plugin: PluginUnderTest,
    screen: &'s Screen,
    window: HostWindow<'s>,
    /// The editor's whole area in the window.
    whole: Region,
    /// Every parameter event the plugin sent, in order.
    received: Vec<ParamOutput>,
}

impl<'s> Session<'s> {
    /// Open the editor the way a host does: check that it embeds in X11, create it, make a
    /// window of the size it asks for, embed it there and show it; then wait until it has drawn.
    fn open(mut plugin: PluginUnderTest, screen: &'s Screen) -> Result<Self> {
        let clock = Instant::now();
        assert!(
            plugin.gui_is_api_supported(GuiApiType::X11, false)?,
            "the plugin does not embed its editor in an X11 window"
        );
        let (width, height) = plugin.gui_create_embedded(GuiApiType::X11)?;
        assert_eq!(
            (width, height),
            EDITOR_SIZE,
            "a fresh instance's editor should open at its default size"
        );
        let (width, height) = (u16::try_from(width)?, u16::try_from(height)?);
        let window = screen.create_window(WINDOW_AT.0, WINDOW_AT.1, width, height)?;
        plugin.gui_set_parent_x11(window.id())?;
        plugin.gui_show()?;
        let whole = Region {
            x: 0,
            y: 0,
            width,
            height,
        };
        let mut session = Session {
            plugin,
            screen,
            window,
            whole,
            received: Vec::new(),
        };

        // The editor's window thread may map its window after `gui.show` has returned.
        let children = session.wait_for("the editor's window inside the host's", REACTION_LIMIT, |s| {
            let children = s.window.children()?;
            Ok((!children.is_empty()).then_some(children))
        })?;
        ensure!(children.len() == 1, "the editor should be one window inside the host's: {children:?}");
        let shown = session.wait_for("the editor to draw in the host window", DRAW_LIMIT, |s| {
            let picture = s.window.grab(whole)?;
            Ok((picture.deviation() > DRAWN).then_some(picture))
        })?;
        save(&shown, "editor.ppm")?;
        println!(
            "editor drawn {:.2} s after gui.create (deviation {:.1})",
            clock.elapsed().as_secs_f64(),
            shown.deviation()
        );
        Ok(session)
    }

    /// Host -> editor: Style Mix set by the host (a flush while inactive, as when a user turns
    /// the host's own control for it) shows on the knob; set back, the knob looks as before.
    fn host_changes_show_on_the_mix_knob(&mut self) -> Result<()> {
        let mix = clap_param_id("mix");
        assert_eq!(
            self.plugin.param_value(mix)?,
            1.0,
            "Style Mix starts at its default"
        );
        let before = self.steady_picture(MIX_KNOB)?;
        save(&before, "mix-before.ppm")?;

        let answer = self.plugin.flush_params(&[(mix, HOST_MIX)])?;
        assert!(
            answer.is_empty(),
            "the host's change came back as an edit of the plugin's: {answer:?}"
        );
        let value = self.plugin.param_value(mix)?;
        assert!(
            (value - HOST_MIX).abs() < 1e-6,
            "params.get_value gives {value} after the host set {HOST_MIX}"
        );
        let clock = Instant::now();
        self.wait_for("the knob to show the host's value", REACTION_LIMIT, |s| {
            Ok((s.window.grab(MIX_KNOB)?.difference(&before) > KNOB_CHANGED).then_some(()))
        })?;
        let shown_after = clock.elapsed();
        let changed = self.steady_picture(MIX_KNOB)?;
        save(&changed, "mix-set-by-host.ppm")?;
        let moved = changed.difference(&before);
        println!(
            "knob redrawn {:.0} ms after the host's change: difference {moved:.2}",
            shown_after.as_secs_f64() * 1e3
        );
        assert!(
            moved > KNOB_CHANGED,
            "the knob's picture changed by only {moved:.2} (see {})",
            out_dir().display()
        );

        self.plugin.flush_params(&[(mix, 1.0)])?;
        let mut last = f64::INFINITY;
        let back = self.wait_for(
            "the knob to look as before once the host set the value back",
            REACTION_LIMIT,
            |s| {
                let picture = s.window.grab(MIX_KNOB)?;
                last = picture.difference(&before);
                Ok((last < KNOB_SAME).then_some(()))
            },
        );
        if let Err(err) = back {
            save(&self.window.grab(MIX_KNOB)?, "mix-set-back.ppm")?;
            bail!(
                "{err:#}: it still differs by {last:.2} from the first picture (see {})",
                out_dir().display()
            );
        }
        println!("back to the first picture (difference {last:.3})");
        assert!(
            self.received.is_empty(),
            "the editor sent edits nobody made: {:?}",
            self.received
        );
        Ok(())
    }

    /// Editor -> host: the pointer drags the knob down; the host hears a gesture with falling
    /// values, and the plugin's value is the last one it heard.
    fn a_drag_on_the_mix_knob_reaches_the_host(&mut self) -> Result<()> {
        let mix = clap_param_id("mix");
        let start = self.plugin.param_value(mix)?;
        let (x, y) = MIX_DIAL_CENTER;
        self.window.move_pointer(x, y)?;
        self.window.button(LEFT_BUTTON, true)?;
        for step in 1..=DRAG_START / 4 {
            self.window.move_pointer(x, y + 4 * step)?;
        }
        let clock = Instant::now();
        self.wait_for(
            "the plugin to begin a gesture for Style Mix",
            REACTION_LIMIT,
            |s| {
                Ok(s.received
                    .contains(&ParamOutput::GestureBegin { param_id: mix })
                    .then_some(()))
            },
        )?;
        println!(
            "gesture begun {:.0} ms after the press became a drag",
            clock.elapsed().as_secs_f64() * 1e3
        );
        let mut pointer_y = y + DRAG_START;
        for step in 1..=DRAG_STEPS {
            let values_before = self.values_of(mix).len();
            pointer_y += DRAG_STEP;
            self.window.move_pointer(x, pointer_y)?;
            self.wait_for(
                &format!("a new Style Mix value after drag step {step}"),
                REACTION_LIMIT,
                |s| Ok((s.values_of(mix).len() > values_before).then_some(())),
            )?;
        }
        self.window.button(LEFT_BUTTON, false)?;
        self.wait_for("the plugin to end its gesture", REACTION_LIMIT, |s| {
            Ok(s.received
                .contains(&ParamOutput::GestureEnd { param_id: mix })
                .then_some(()))
        })?;
        // Out of the way, and until the editor has settled (anything the plugin sends meanwhile
        // is collected too).
        self.screen
            .move_pointer(POINTER_PARKED.0, POINTER_PARKED.1)?;
        self.steady_picture(MIX_KNOB)?;
        save(&self.window.grab(self.whole)?, "editor-after-drag.ppm")?;

        let received = &self.received;
        println!("the host received: {received:?}");
        assert!(
            received.iter().all(|e| e.param_id() == mix),
            "dragging Style Mix touched other parameters: {received:?}"
        );
        assert!(
            matches!(received.first(), Some(ParamOutput::GestureBegin { .. }))
                && matches!(received.last(), Some(ParamOutput::GestureEnd { .. }))
                && received[1..received.len() - 1]
                    .iter()
                    .all(|e| matches!(e, ParamOutput::Value { .. })),
            "one drag must be one gesture, begin, values, end: {received:?}"
        );
        let values = self.values_of(mix);
        assert!(
            values.len() >= usize::from(DRAG_STEPS),
            "fewer values than drag steps: {values:?}"
        );
        assert!(
            values[0] < start && values.windows(2).all(|w| w[1] <= w[0]),
            "dragging down must only ever lower Style Mix: from {start} to {values:?}"
        );
        // The pointer moved 40 px down after the gesture began and 12 px before (not all of
        // which need count): at the knob's 1/200 per pixel, 0.2 to 0.26.
        let last = values[values.len() - 1];
        let moved = start - last;
        assert!(
            (0.15..=0.3).contains(&moved),
            "a 52 px drag moved Style Mix by {moved}: {values:?}"
        );
        let now = self.plugin.param_value(mix)?;
        assert_eq!(
            now, last,
            "params.get_value gives {now}, but the host last heard {last}"
        );
        Ok(())
    }

    /// Destroy the editor as a host does before it closes its window, then the window; the
    /// plugin stays. The plugin must not report its editor closed on its own on the way, and its
    /// window must leave the host's.
    fn close(mut self) -> Result<PluginUnderTest> {
        let destroying = Instant::now();
        self.plugin.gui_destroy()?;
        println!("gui.destroy took {:.1} ms", destroying.elapsed().as_secs_f64() * 1e3);
        // The editor's window thread has exited when `gui.destroy` returns (plugin/src/editor/
        // window.rs), but the X server may not yet have handled its closed connection.
        let clock = Instant::now();
        let mut left = self.window.children()?;
        if !left.is_empty() {
            self.wait_for(
                "the editor's window to leave the host window",
                REACTION_LIMIT,
                |s| {
                    left = s.window.children()?;
                    Ok(left.is_empty().then_some(()))
                },
            )?;
            println!(
                "the editor's window outlived gui.destroy by {:.0} ms",
                clock.elapsed().as_secs_f64() * 1e3
            );
        }
        self.plugin.serve_main_thread_requests()?;
        assert_eq!(
            self.plugin.gui_closed_reports(),
            0,
            "the plugin reported its editor closed on its own"
        );
        let resizes = self.plugin.gui_resize_requests();
        assert!(
            resizes.is_empty(),
            "the editor asked to resize its window unprompted: {resizes:?}"
        );
        let Session { plugin, window, .. } = self;
        drop(window);
        Ok(plugin)
    }

    /// Serve the plugin as a host's main loop does until `check` gives something, or fail after
    /// `limit` saying what did not happen.
    fn wait_for<T>(
        &mut self,
        what: &str,
        limit: Duration,
        mut check: impl FnMut(&mut Self) -> Result<Option<T>>,
    ) -> Result<T> {
        let deadline = Instant::now() + limit;
        loop {
            let events = self.plugin.serve_main_thread_requests()?;
            self.received.extend(events);
            if let Some(found) = check(self)? {
                return Ok(found);
            }
            if Instant::now() > deadline {
                bail!("waited {limit:?} for {what} in vain");
            }
            std::thread::sleep(POLL);
        }
    }

    /// `region` once two pictures of it a few frames apart are the same: the editor has drawn
    /// whatever it had to.
    fn steady_picture(&mut self, region: Region) -> Result<Picture> {
        let mut last = self.window.grab(region)?;
        self.wait_for("the editor to stop changing", REACTION_LIMIT, |s| {
            std::thread::sleep(STEADY_GAP);
            let picture = s.window.grab(region)?;
            let same = picture.difference(&last) == 0.0;
            last = picture.clone();
            Ok(same.then_some(picture))
        })
    }

    /// The values the plugin sent for `param_id`, in order.
    fn values_of(&self, param_id: u32) -> Vec<f64> {
        self.received
            .iter()
            .filter_map(|e| match *e {
                ParamOutput::Value {
                    param_id: id,
                    value,
                } if id == param_id => Some(value),
                _ => None,
            })
            .collect()
    }
}

/// Write `picture` as `name` beside the others, for a person to look at.
fn save(picture: &Picture, name: &str) -> Result<()> {
    picture.write_ppm(&out_dir().join(name))
}
