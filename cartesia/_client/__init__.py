"""Client internals: config, one generation state machine, error mapping, routing, transports."""
