/*
 * placement: which node takes a component that moves.
 *
 * A pure function of its inputs (no registry, no clock, no locks), so it is
 * tested on plain arrays.
 *
 * Rule (the seed's, fixed): among the candidates that are up, are not
 * cordoned, are not the source, carry every label the component requires
 * (key=value; a required value "" only asks for the key), and have at least
 * the component's size free (when both are known), the best free-capacity
 * score wins:
 *
 *     score = mem_free_MiB * 1000 / (1000 + load_per_cpu_milli)
 *     load_per_cpu_milli = cpu_load_milli / max(cpu_count, 1)
 *
 * An idle node scores its free memory in MiB; a node whose CPUs are all busy
 * (one runnable task per CPU) scores half of it, two per CPU a third, and so
 * on. Ties go to the node running the fewest components, then to the smaller
 * node id (strcmp), so the choice is deterministic.
 *
 * A node that reports no memory figures at all (mem_total_bytes == 0) has an
 * unknown capacity: it is not excluded for size and scores 0, so any node
 * that reported room wins over it. A node that counts pr_max_components
 * components is full: left out, as one without room (its heartbeats would
 * report more components than the manager takes from a node). What a node
 * counts is the caller's (pc_components): the manager counts those it runs
 * and those on their way to it (registry.h, "Placement counts").
 */
#ifndef CKPT_MGR_PLACEMENT_H
#define CKPT_MGR_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PLACE_ERR_MAX 256

/* A label: of a node (what it carries) or of a component (what it requires). */
struct place_label {
	const char *pl_key;
	const char *pl_value;
};

struct place_cand {
	const char *pc_node;
	bool pc_up;
	uint64_t pc_mem_free_bytes;
	uint64_t pc_mem_total_bytes; /* 0: the node reported no capacity */
	uint32_t pc_cpu_count;
	uint32_t pc_cpu_load_milli;  /* 1-minute load average * 1000 */
	uint32_t pc_components;      /* components the node runs or is taking */
	uint32_t pc_arriving;        /* of those, on their way (for messages) */
	bool pc_cordoned;            /* takes no component */
	const struct place_label *pc_labels;
	size_t pc_nlabels;
};

struct place_req {
	const char *pr_component;
	const char *pr_source;   /* node that runs it now; NULL or "": none */
	const char *pr_target;   /* explicit target; NULL or "": choose */
	uint64_t pr_need_bytes;  /* state size of the component; 0: unknown */
	const struct place_label *pr_requires;
	size_t pr_nrequires;
	/* Nodes that refused the component's spec already: not candidates. */
	const char *const *pr_exclude;
	size_t pr_nexclude;
	/* A node running this many components takes no more (--max-node-components); 0: no cap. */
	uint32_t pr_max_components;
};

uint64_t place_score(const struct place_cand *c);

/*
 * Picks a candidate and stores its index in *ret_index. Errors, with a
 * one-line message in err:
 *   -EINVAL  explicit target unknown, or it is the source
 *   -ESTALE  explicit target down, cordoned, without a required label or
 *            too small; no candidate can take it (FAILED_PRECONDITION on the
 *            wire); the message counts why each node was left out
 */
int place_choose(const struct place_cand *cands, size_t n, const struct place_req *req,
    size_t *ret_index, char *err, size_t errlen);

#endif
