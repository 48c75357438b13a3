"""``python -m chat_app [uvicorn options]``: uvicorn with the init phase's collector paused.

The Lambda entry (``run.sh``) starts the app this way rather than with ``python -m uvicorn``: the
garbage collector must pause before the first heavy import (:mod:`chatkit_backend.init_phase`),
uvicorn's app factory (``--factory chat_app.app:create_app``) builds the agent stack, and the
app's lifespan resumes the collector, before ``/health`` answers.
The options are uvicorn's own.
"""

from chatkit_backend.init_phase import pause_collector

pause_collector()

import uvicorn  # noqa: E402 (after the pause: the point of this module)

uvicorn.main()
