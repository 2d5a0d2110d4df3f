// Package relay is how a bot on slackrelay is written: one typed handler per route,
// registered on a Router, with helpers that make every reply exactly-once by construction.
//
//	func Register(r *relay.Router) {
//		relay.Event(r, "reaction_added", thank) // func(ctx, *relay.Request[slackevents.ReactionAddedEvent]) error
//		relay.Command(r, "/ask", ask)            // func(ctx, *relay.Request[slack.SlashCommand]) error
//		relay.Action(r, "refresh", refresh)      // func(ctx, *relay.Request[slack.InteractionCallback]) error
//	}
//
// A bot's main hands its routes to the worker (package worker: worker.Main); its tests run
// them through the same engine with package relaytest. Duplicate routes and options that do
// not fit a route's payload stop the worker at start-up (Router.Err).
//
// For each queue message the engine asks the Router which route takes it: the body is
// decoded once into the route's payload type, the route's "not mine" decisions (Skip, the
// bot's own and other bots' messages, message subtypes) are taken and the dedupe key is
// computed, all before anything is claimed, so a skipped delivery never consumes a key its
// twin needs. The handler then runs under the key's journal: Reply, Post, Respond, Ephemeral,
// Update, OpenView and Stream write what they are about to send under a named step before
// sending it, so a retry, a Slack redelivery, a continuation or a DLQ replay resumes where
// the last attempt stopped instead of repeating it. Errors steer retries: Permanent (to the
// DLQ now), RetryAfter (come back later), anything else is retried with backoff. See
// docs/handlers.md.
package relay
