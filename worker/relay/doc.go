// Package relay is how a bot on slackrelay is written: one typed handler per route, registered
// on a Bot, with helpers that make every reply exactly-once by construction.
//
//	bot := relay.NewRouter()
//	relay.Event(bot, "reaction_added", thanks) // func(ctx, *relay.Request[slackevents.ReactionAddedEvent]) error
//	relay.Command(bot, "/ask", ask)             // func(ctx, *relay.Request[slack.SlashCommand]) error
//	if err := bot.Err(); err != nil { … }       // duplicate routes and bad options stop start-up
//
// For each queue message the worker calls Bot.Dispatch, which decodes the body once into the
// route's payload type, takes the route's "not mine" decisions (Skip, the bot's own and other
// bots' messages, message subtypes) and computes the dedupe key — all before anything is
// claimed, so a skipped delivery never consumes a key its twin needs. Delivery.Run then runs
// the handler under the key's journal (package journal): Reply, Post, Respond, Ephemeral,
// Update, OpenView and Stream write what they are about to send under a named step before
// sending it, so a retry, a Slack redelivery, a continuation or a DLQ replay resumes where
// the last attempt stopped instead of repeating it. Errors steer retries: Permanent (to the
// DLQ now), RetryAfter (come back later), anything else is retried with backoff. See
// docs/handlers.md.
package relay
