"""What every surface shares: request ids, CORS, cursors, strict parameters, bounded bodies, SSE
framing, stream slots, rate-limit charging, and the table from engine errors to each surface's shape.
A surface file holds only its routes and its wire shapes."""
