from peers.agent.cli import main

raise SystemExit(main())
