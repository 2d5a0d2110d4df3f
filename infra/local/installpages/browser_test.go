package installpages

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/slackrelay/slackrelay/receiver/intake"
	"github.com/slackrelay/slackrelay/shared/install"
	"github.com/slackrelay/slackrelay/worker/fakeslack"

	"github.com/slackrelay/slackrelay/infra/local/localaws"
)

// screenshot rewrites docs/images/install-success.png from the browser check (also set by
// SLACKRELAY_SCREENSHOT=1).
var screenshot = flag.Bool("screenshot", false, "write the success page's screenshot to docs/images/install-success.png")

// screenshotPath is the screenshot in the docs, from the repository root.
const screenshotPath = "docs/images/install-success.png"

// chromium finds a Chromium (or Chrome) binary: $CHROMIUM, then the usual names on PATH.
func chromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestBrowserInstall opens the install page in headless Chromium, clicks Add to Slack, then
// Allow on the local Slack's consent page, and lands on the success page: what a person
// installing the app does, with the browser's own cookie handling (SameSite, Path, HttpOnly)
// and redirects.
func TestBrowserInstall(t *testing.T) {
	path := chromium()
	if path == "" {
		t.Skip("no Chromium found (set CHROMIUM, or apt-get install chromium): the install pages are not checked in a real browser")
	}
	w := setup(t, fakeslack.Options{TokenRotation: true})

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(900, 560),
	)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(alloc)
	defer cancelCtx()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	start := time.Now()
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("browser: %s: %v", what, err)
		}
	}
	step("open the install page", chromedp.Do(ctx,
		chromedp.Navigate(w.receiver+intake.PathInstall+"?team=T0002"),
		chromedp.WaitVisible(chromedp.ID("add-to-slack")),
		chromedp.Click(chromedp.ID("add-to-slack")),
		chromedp.WaitVisible(chromedp.ID("allow")),
	))
	consentTitle, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
	step("read the consent page", err)
	step("allow", chromedp.Do(ctx,
		chromedp.Click(chromedp.ID("allow")),
		chromedp.WaitVisible(chromedp.ID("result")),
	))
	heading, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("result")))
	step("read the heading", err)
	status, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID("page"), "data-status"))
	step("read the status", err)
	location, err := chromedp.Run(ctx, chromedp.Location())
	step("read the location", err)
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	step("screenshot", err)
	t.Logf("install page → consent → success page in %v", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(consentTitle, "acme") {
		t.Errorf("consent page heading %q: want the acme workspace", consentTitle)
	}
	if heading != "slackrelay is installed in acme" || status.Value != "200" || !strings.HasPrefix(location, w.receiver+intake.PathOAuthRedirect+"?") {
		t.Errorf("success page: heading %q, status %s, at %s", heading, status.Value, location)
	}
	got, err := w.store.Get(context.Background(), install.TeamKey("T0002"))
	if err != nil || got.Status != install.StatusActive || got.BotID != "BB0002" || got.RefreshToken == "" || got.ExpiresAt.IsZero() {
		t.Errorf("stored installation: %v (bot %q, refresh token %t, expiry %v), %v", got, got.BotID, got.RefreshToken != "", got.ExpiresAt, err)
	}

	if *screenshot || os.Getenv("SLACKRELAY_SCREENSHOT") == "1" {
		root, err := localaws.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(root, filepath.FromSlash(screenshotPath))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", out, len(png))
	}
}
