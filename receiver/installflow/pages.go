package installflow

import (
	"bytes"
	"html/template"
	"sync"

	"github.com/slackrelay/slackrelay/receiver/intake"
)

// The pages are plain HTML with inline styles: no script, no external resource (the
// Content-Security-Policy forbids both). They are parsed when a page is first shown, not at
// init: a receiver that only takes Slack's requests does not spend its cold start on them.
const layout = `{{define "layout"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;background:#f8f8f8;color:#1d1c1d;margin:0}
main{max-width:34rem;margin:4rem auto;background:#fff;border:1px solid #ddd;border-radius:8px;padding:2rem 2.5rem}
h1{font-size:1.5rem;margin-top:0}
p{line-height:1.5}
a.button{display:inline-block;background:#4a154b;color:#fff;text-decoration:none;font-weight:700;padding:.7rem 1.4rem;border-radius:6px}
.fail h1{color:#a4112b}
.muted{color:#616061;font-size:.9rem}
</style></head>
<body><main class="{{.Class}}" id="page" data-status="{{.Status}}">{{template "body" .}}</main></body></html>
{{end}}`

// The page bodies, each with the layout.
const (
	installBody = `{{define "body"}}
<h1>Add {{.App}} to Slack</h1>
<p>{{.App}} answers in Slack threads and direct messages. Installing it lets it read the
messages it is sent and post its answers{{if .Team}} in workspace <code>{{.Team}}</code>{{end}}.</p>
<p><a class="button" id="add-to-slack" href="{{.AuthorizeURL}}">Add to Slack</a></p>
<p class="muted">You will confirm on Slack's own page. This link works for 10 minutes, in this browser.</p>
{{end}}`
	successBody = `{{define "body"}}
<h1 id="result">{{.App}} is installed in {{.Workspace}}</h1>
<p>Mention <b>@{{.App}}</b> in a channel or send it a direct message to start.</p>
{{if .OpenURL}}<p><a class="button" id="open-slack" href="{{.OpenURL}}">Open {{.Workspace}} in Slack</a></p>{{end}}
{{end}}`
	failureBody = `{{define "body"}}
<h1 id="result">{{.Heading}}</h1>
<p id="reason">{{.Reason}}</p>
{{if .Again}}<p><a class="button" id="start-again" href="{{.Again}}">Start again</a></p>{{end}}
{{end}}`
)

func page(body string) func() *template.Template {
	return sync.OnceValue(func() *template.Template {
		return template.Must(template.Must(template.New("layout").Parse(layout)).Parse(body))
	})
}

var (
	installPage = page(installBody)
	successPage = page(successBody)
	failurePage = page(failureBody)
)

// pageHeaders keep the pages out of caches and frames and allow them no script.
var pageHeaders = map[string]string{
	"Cache-Control":           "no-store",
	"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
	"Referrer-Policy":         "no-referrer",
	"X-Content-Type-Options":  "nosniff",
}

// render writes a page; its data is escaped by html/template.
func render(status int, t func() *template.Template, data map[string]any, cookies ...string) intake.Response {
	data["Status"] = status
	if data["Title"] == nil {
		data["Title"] = data["App"]
	}
	if status >= 400 {
		data["Class"] = "fail"
	}
	var b bytes.Buffer
	if err := t().ExecuteTemplate(&b, "layout", data); err != nil {
		// The templates are fixed and their data plain strings: this cannot happen, but a
		// page must still be answered.
		b.Reset()
		b.WriteString("<!doctype html><title>error</title><p>The page could not be shown.</p>")
		status = 500
	}
	return intake.Response{Status: status, ContentType: "text/html; charset=utf-8", Body: b.Bytes(), Headers: pageHeaders, SetCookies: cookies}
}
