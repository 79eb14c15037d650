/*
 * In-memory stand-ins for the NAS and the manager, served over real nng
 * sockets with the common rpc layer, so the agent can be tested whole in one
 * process. Only what the agent uses is implemented.
 */
#ifndef CKPT_TEST_AGENT_FAKES_H
#define CKPT_TEST_AGENT_FAKES_H

#include <stdbool.h>
#include <stdint.h>

#include "sha.h"

struct fnas;
struct fmgr;

struct fnas_rec {
	char fr_node[64];
	char fr_component[64];
	uint64_t fr_seq;
	uint64_t fr_epoch;
	uint64_t fr_size;
	uint8_t fr_sha256[SHA_LEN];
	char fr_kind[32]; /* "": "demo" */
};

int fnas_start(const char *url, struct fnas **ret_nas);
const char *fnas_url(const struct fnas *n);
void fnas_stop(struct fnas *n);
/* Number of records of component; the latest in *ret_latest (if any). */
unsigned fnas_count(struct fnas *n, const char *component, struct fnas_rec *ret_latest);
/* Flips a byte in every chunk GetChunks sends from now on. */
void fnas_set_corrupt(struct fnas *n, bool on);
/* Relabels every record of component as made by the driver kind. */
void fnas_set_kind(struct fnas *n, const char *component, const char *kind);
/* Down: every call is refused UNAVAILABLE (a NAS away); up again: answered. */
void fnas_set_down(struct fnas *n, bool down);
/* The next count Stores are refused for missing chunks (reason missing_chunks). */
void fnas_refuse_missing(struct fnas *n, unsigned count);
/* Stores refused so, in all. */
unsigned fnas_refused(struct fnas *n);
/* Stores a record directly (its data are not kept: retrieving it fails). */
void fnas_put_record(struct fnas *n, const struct fnas_rec *r);

struct fmgr_stats {
	unsigned fs_attaches;
	unsigned fs_heartbeats;
	unsigned fs_notifies;
	unsigned fs_migrates;
	unsigned fs_migrations_ok;
	char fs_last_address[256];      /* from the last Attach */
	unsigned fs_last_components;    /* of the last Attach */
	char fs_last_notified[64];      /* component@seq */
};

int fmgr_start(const char *url, const char *nas_url, struct fmgr **ret_mgr);
const char *fmgr_url(const struct fmgr *m);
void fmgr_stop(struct fmgr *m);
void fmgr_stats(struct fmgr *m, struct fmgr_stats *ret_stats);
/* Down: Attach and Heartbeat refused at once (UNAVAILABLE); up: answered. */
void fmgr_set_down(struct fmgr *m, bool down);
/* The next count Heartbeats are refused at once (UNAVAILABLE), as lost ones. */
void fmgr_refuse_heartbeats(struct fmgr *m, unsigned count);
unsigned fmgr_refused_heartbeats(struct fmgr *m);
/* The next Heartbeat answers reattach = true. */
void fmgr_request_reattach(struct fmgr *m);
/* Migrate moves a component from the agent at source to the one at target. */
void fmgr_set_route(struct fmgr *m, const char *source_url, const char *target_url);

#endif
