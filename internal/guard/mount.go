package guard

import (
	"time"

	"github.com/tollguard/tollguard/internal/api"
	"github.com/tollguard/tollguard/internal/store"
)

// mountStoreRoutes adds the event-store routes (events, investigate,
// backup) to the admin API.
func mountStoreRoutes(s *api.Server, st store.Store, _ func() time.Time) { s.MountEvents(st) }
