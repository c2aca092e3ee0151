"""How a run can end, and the exit code each ending has (the codes every command shares are
documented in the operator's guide; a scheduler retries on 3, retries on 5 once the cluster
answers again, and pages on 2 or 4)."""

from __future__ import annotations

from enum import Enum

EXIT_OK = 0
EXIT_CHECK_FAILED = 1  # plan found a problem, verify a wrong row, duplicates a repeated id
EXIT_ERROR = 2  # the command could not start or failed (configuration, storage, model)
EXIT_INCOMPLETE = 3  # embed: some units failed or did not finish, or the run was stopped; a re-run resumes
EXIT_LEASE_LOST = 4  # embed: another run took the output over; this one changed nothing after
# embed: the Ray cluster it joined stopped answering (stopped, its head node gone); what it
# committed stays and a re-run resumes, once the cluster is back (or on another).
EXIT_CLUSTER_LOST = 5


class Ending(Enum):
    """A run's ending, as its manifest records it (`state`) and as its exit code says it."""

    COMPLETE = ("complete", EXIT_OK)
    # Units failed, or the run was stopped (a signal, no progress, a store that kept failing)
    # after it took the output: what it committed stays, a re-run resumes.
    INCOMPLETE = ("incomplete", EXIT_INCOMPLETE)
    # Stopped (a signal) or ended (no progress) before it took the output: nothing was changed,
    # and running it again is all there is to do, as for any stopped run.
    STOPPED_BEFORE_START = ("not started", EXIT_INCOMPLETE)
    # Its Ray cluster stopped answering: a code of its own, because a scheduler should look at
    # (or wait for) the cluster before it runs the job again, where 3 says "run again".
    CLUSTER_LOST = ("incomplete", EXIT_CLUSTER_LOST)
    CLUSTER_LOST_BEFORE_START = ("not started", EXIT_CLUSTER_LOST)
    LEASE_LOST = ("failed", EXIT_LEASE_LOST)  # another run holds the output now
    FAILED = ("failed", EXIT_ERROR)

    def __init__(self, state: str, exit_code: int):
        self.state, self.exit_code = state, exit_code
