// Package installpages tests the receiver's install pages (receiver/installflow) whole: the
// real handler (intake.Handler with its Pages) on 127.0.0.1, the local Slack server's consent
// page and oauth.v2.access (worker/fakeslack), and the local DynamoDB (localaws), with a
// cookie-keeping HTTP client and, where Chromium is installed, a real headless browser
// (chromedp) that clicks through the pages and can refresh the screenshot in
// docs/images/install-success.png (go test ./installpages -run Browser -screenshot).
//
// Everything is in the package's tests; this file only documents it.
package installpages
