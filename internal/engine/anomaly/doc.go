// Package anomaly learns each account's normal calling from events and
// scores call attempts with an Isolation Forest (Liu, Ting & Zhou 2008),
// explaining every score in words.
//
// A Baseline learns incrementally, per account and for the whole PBX, over
// a rolling window; a Trainer samples the features of the window's call
// attempts and fits a Model; Model.Score scores one attempt's features and
// names the unusual ones. Models are saved and loaded with WriteModel and
// ReadModel (versioned, checksummed). The package is pure: no I/O, no
// clock, time comes from the events. See README.md for the features, the
// config and what the model cannot catch.
package anomaly
