/*
 * migrate: moving a component from its node (the source) to another (the
 * target), with outgoing calls to the agents and the NAS.
 *
 *  1. reg_migrate_begin(): the source and its epoch; a second migration of
 *     the same component is refused (-ECANCELED, ABORTED). A component no node
 *     runs and the catalogue does not know is looked up on the NAS (List,
 *     latest_only) before answering -ENOENT.
 *  2. placement (placement.h) or the explicit target; publish
 *     migration.started.
 *  3. source up: Agent.Stop{component, checkpoint: true} (the final
 *     checkpoint); source down, not answering or Stop failed: the latest
 *     checkpoint of the catalogue, else of the NAS. Before Stop and Restore a
 *     short Agent.Status probe (MIG_PROBE_MS) tells a dead agent from a slow
 *     one, so a node that just died costs one second, not the Stop time.
 *  4. epoch + 1, Agent.Restore{component, node, seq, sha256, epoch} on the
 *     target (it fetches from the NAS and verifies the digest). NOT_FOUND:
 *     that checkpoint was deleted (ckptctl rm, retention): the catalogue
 *     takes the newest the NAS holds and that one is restored instead
 *     (reg_checkpoint_gone(); up to MIG_GONE_TRIES times). A failover asks
 *     the NAS first, and a catalogue newer than the NAS means deleted too.
 *  5. success: registry updated (component on the target), migration.done.
 *     failure: migration.failed, and when step 3 stopped the component on a
 *     source that is up, Restore back on the source (epoch + 2) so nothing is
 *     lost.
 *
 * No lock is held during a call. Time: the caller's remaining deadline
 * (budget_ms) is split: Stop gets half of it (1 s to MIG_STOP_MAX_MS), Restore
 * what is left (MIG_RESTORE_MIN_MS to MIG_RESTORE_MAX_MS). Once a component is
 * stopped it gets restored somewhere even if the caller stops waiting: the
 * minimum restore time and the rollback (MIG_ROLLBACK_MS) may outlive the
 * caller's deadline, by design.
 */
#ifndef CKPT_MGR_MIGRATE_H
#define CKPT_MGR_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt/v1/nas.pb-c.h"
#include "event.h"
#include "nasc.h"
#include "mmet.h"
#include "registry.h"

#define MIG_STOP_MIN_MS 1000u
#define MIG_STOP_MAX_MS 10000u
#define MIG_RESTORE_MIN_MS 2000u
#define MIG_RESTORE_MAX_MS 30000u
#define MIG_ROLLBACK_MS 10000u
#define MIG_NAS_MAX_MS 2000u
#define MIG_PROBE_MS 1000u   /* Agent.Status before Stop and Restore: is it there? */
#define MIG_ERR_MAX 1024
#define MIG_GONE_TRIES 3     /* restores retried after the checkpoint asked for was deleted */
#define MIG_PLACE_TRIES 8    /* placements retried when another move took the place meanwhile */

struct mig_env {
	struct reg *me_reg;
	struct nasc *me_nasc;     /* NULL: no NAS look-ups */
	struct event_pub *me_pub; /* NULL: no events */
	struct mmet *me_met;      /* NULL: not counted (mmet.h) */
	uint32_t me_max_node_comps; /* placement leaves out nodes running this many; 0: no cap */
};

#define MIG_REFUSALS_MAX 8   /* nodes a spec is offered to after the first refusal */

/* A node that refused a component's spec (its allow list), and why. */
struct mig_refusal {
	char mf_node[KEY_NAME_MAX + 1];
	char mf_reason[MIG_ERR_MAX];
};

struct mig_result {
	char mr_source[KEY_NAME_MAX + 1];  /* "" when no node ran it */
	char mr_target[KEY_NAME_MAX + 1];
	struct reg_ref mr_from;            /* the checkpoint restored */
	bool mr_has_state_sha;
	uint8_t mr_state_sha256[SHA_LEN];  /* as the target reported it */
	uint64_t mr_epoch;
	bool mr_fresh;                     /* started from its spec: no checkpoint existed */
	size_t mr_nrefused;                /* nodes that refused its spec before the target */
	struct mig_refusal mr_refused[MIG_REFUSALS_MAX];
};

/*
 * Migrates component to target (NULL or "": placement chooses). On failure
 * returns a negative errno with a one-line message in err (MIG_ERR_MAX).
 */
int mig_run(const struct mig_env *env, const char *component, const char *target,
    unsigned budget_ms, struct mig_result *ret_res, char *err, size_t errlen);

/* What kind of move mig_run_as() makes: words for the logs and event kinds. */
struct mig_kind {
	const char *mk_what;        /* "migration", "failover", "drain" */
	const char *mk_ev_started;  /* MEV_* */
	const char *mk_ev_done;
	const char *mk_ev_failed;
	/*
	 * Failover: the component's node is down. The latest checkpoint comes
	 * from the NAS first (the catalogue may lag behind the last Notify), and
	 * when the node is found up again the move is not made (-EALREADY).
	 */
	bool mk_failover;
	/*
	 * Resume (with mk_failover): the target is the node that declared the
	 * component when it started again; it takes it whatever placement says
	 * (labels, cordon, room), and a component no node owns is no reason to
	 * give up. -ENOENT: no checkpoint of it exists (the node may start it
	 * fresh).
	 */
	bool mk_resume;
	/*
	 * Apply (with mk_failover): ckptctl apply places a component that may be
	 * new, with the spec given (mig_apply()); nothing runs it now.
	 */
	bool mk_apply;
};

extern const struct mig_kind mig_kind_migration;
extern const struct mig_kind mig_kind_failover;
extern const struct mig_kind mig_kind_drain;
extern const struct mig_kind mig_kind_resume;
extern const struct mig_kind mig_kind_apply;

int mig_run_as(const struct mig_env *env, const struct mig_kind *kind, const char *component,
    const char *target, unsigned budget_ms, struct mig_result *ret_res, char *err,
    size_t errlen);

/*
 * Specs (ckptctl apply). Every move but a resume reads the component's spec
 * from the NAS (Nas.GetSpec) and hands it to the target with Restore, so the
 * new node runs the same program; the labels it requires are the spec's (a
 * NAS that does not answer: logged, and the move goes on without a spec, as
 * it goes on from the catalogue's checkpoint). A
 * component with a spec and no checkpoint (none yet, or all deleted) is
 * started fresh from it (RestoreRequest.fresh). A target that refuses the
 * spec (FAILED_PRECONDITION or PERMISSION_DENIED: its allow list, a program
 * not installed) is left out and placement asked again, up to
 * MIG_REFUSALS_MAX times unless the target was explicit; each refusal is
 * logged and published (spec.refused), and when no node takes it the error
 * names every node with its reason (-ESTALE).
 *
 * mig_apply(): places spec's component, which no node may run (-EALREADY
 * when an up node runs it), from its latest checkpoint or fresh. A fresh
 * start's epoch is above the catalogue's and above nas_epoch, the newest the
 * NAS has seen of it (PutSpecReply/GetSpecReply.epoch: it outlives deleted
 * checkpoints, and the NAS refuses stores below it).
 */
int mig_apply(const struct mig_env *env, const Ckpt__V1__ComponentSpec *spec, uint64_t nas_epoch,
    unsigned budget_ms, struct mig_result *ret_res, char *err, size_t errlen);
/*
 * The spec stored for component: *ret_rep (rpc_reply_free() it) holds it.
 * -ENOENT when none; other errors with the cause in err.
 */
int mig_nas_spec(struct nasc *nasc, const char *component, unsigned timeout_ms,
    Ckpt__V1__GetSpecReply **ret_rep, char *err, size_t errlen);

/*
 * The latest checkpoint of component the NAS holds (List, latest_only; the
 * highest seq over every node). -ENOENT when none; other errors with the
 * cause in err.
 */
int mig_nas_latest(struct nasc *nasc, const char *component, unsigned timeout_ms,
    struct reg_ckpt *ret_ckpt, char *err, size_t errlen);

#endif
