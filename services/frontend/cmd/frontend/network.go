package main

import (
	"context"

	"github.com/kub-demo/kub-demo/discovery"
	"github.com/kub-demo/kub-demo/services/frontend/internal/chainview"
)

// chainView is what /network/discovery serves: the frontend's own discovery view, and those of
// users, tasks and auth when a setting asks for them (package chainview).
func chainView(cfg *config, peers []discovery.Peer) *chainview.Chain {
	c := &chainview.Chain{
		Settings:    cfg.Settings,
		LabControls: cfg.LabControls,
		Users:       peers[0].Found,
		Tasks:       peers[1].Found,
		Own: func(ctx context.Context) discovery.View {
			return discovery.Look(ctx, "frontend", peers, cfg.DiscoveryInputs())
		},
	}
	if cfg.ServedBy {
		c.OwnPod = cfg.Pod().String()
	}
	return c
}
