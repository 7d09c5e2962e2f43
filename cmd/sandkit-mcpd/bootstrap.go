package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/sandkit/sandkit-mcp/engine"
	"github.com/sandkit/sandkit-mcp/internal/door"
)

// bootstrap builds the snapshots of the operator's setup templates now, instead of on their
// first use by create_workspace.
//
// It opens the data dir's engine in this process, so it refuses to run while a daemon serves the
// data dir (the daemon owns the state file; it builds templates lazily itself). Run it when
// provisioning a machine, or after `sandkit-mcp stop`. A door that starts a daemon while bootstrap
// runs fails after waiting for the state file (lockWait) and says which process holds it.
func bootstrapCmd(ctx context.Context, args []string) error {
	var names door.StringList
	var rebuild bool
	cfg, _, err := parseConfig("bootstrap", args, func(fs *flag.FlagSet) {
		fs.Var(&names, "template", "template to build (repeatable; default: all)")
		fs.BoolVar(&rebuild, "rebuild", false, "run the setups again even when their snapshot is built")
	})
	if err != nil {
		return err
	}
	if info, ok := door.Running(cfg.dataDir); ok {
		return fmt.Errorf("a sandkit-mcp daemon serves data dir %s (%s) and owns its state; it builds each template on its first use by create_workspace.\n"+
			"to build templates ahead of time, stop it first (`sandkit-mcp stop --data-dir %s`), run bootstrap, and let the next agent start it again",
			cfg.dataDir, infoSummary(info), cfg.dataDir)
	}
	oc, err := loadOperatorConfig(cfg)
	if err != nil {
		return err
	}
	if len(oc.templates) == 0 {
		where := "no config file was found (--config FILE, or " + defaultConfigFile + " in the data dir)"
		if oc.path != "" {
			where = "config " + oc.path + " has no \"templates\""
		}
		return fmt.Errorf("nothing to bootstrap: %s; see the README's configuration section", where)
	}
	logger, err := door.NewLogger(cfg.logLevel)
	if err != nil {
		return err
	}
	rt, err := openRuntime(ctx, cfg, runtimeOptions{lockWait: 2 * time.Second}, logger)
	if err != nil {
		return err
	}
	defer rt.Close()
	fmt.Printf("bootstrapping templates of %s (data dir %s)\n", oc.path, cfg.dataDir)
	start := time.Now()
	res, berr := rt.engine.Bootstrap(ctx, names, rebuild)
	for _, t := range res {
		fmt.Println(bootstrapLine(t))
	}
	if berr != nil {
		return fmt.Errorf("bootstrap failed:\n%w", berr)
	}
	fmt.Printf("done in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// bootstrapLine reports one template's outcome.
func bootstrapLine(t engine.TemplateStatus) string {
	fp := t.Fingerprint
	if len(fp) > 12 {
		fp = fp[:12]
	}
	switch {
	case t.BuiltNow:
		return fmt.Sprintf("  %s: built snapshot %s in %s (fingerprint %s)", t.Name, t.Snapshot, (time.Duration(t.DurationMS) * time.Millisecond).Round(time.Millisecond), fp)
	case t.Ready:
		return fmt.Sprintf("  %s: already built (snapshot %s, built %s, fingerprint %s); --rebuild runs the setup again", t.Name, t.Snapshot, t.Built.Local().Format(time.DateTime), fp)
	default:
		return fmt.Sprintf("  %s: FAILED (fingerprint %s)", t.Name, fp)
	}
}
