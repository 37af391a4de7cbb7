/* planted_stray: a program with a planted bug, for `ckptmpi debug` and
 * `ckptmpi bisect` (test/e2e/debug_*.sh).
 *
 *   planted_stray NSTEPS SLEEP_MS K [LOG_PATH=planted.log]
 *
 * Each iteration i (1..NSTEPS) moves a little "energy" around a ring of
 * cells, adds 1.0 to the global `energy` and writes one cell through a
 * pointer that `target()` computes. At iteration K (known only to whoever
 * starts the program) target() points at `st.energy` instead of a cell:
 * the stray write stores a negative value there, and `st.energy < 0` holds
 * from then on (it only ever grows by 1.0 per iteration).
 *
 * Output, one line per iteration, flushed, then a sleep of SLEEP_MS:
 *   "i energy=E cell=C"   (also appended to LOG_PATH, flushed every line)
 * first line "0 start", last "NSTEPS+1 final energy=E". */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

#define NCELLS 32

struct state {
	double cells[NCELLS];
	double energy;  /* the sum of what was put in: never negative */
	long iteration; /* the iteration under way */
};

struct state st;
static long stray_at;
static const char *log_path = "planted.log";

/* Where iteration i writes its new cell value: a cell, except once. */
static double *target(long i)
{
	size_t off = offsetof(struct state, cells) + sizeof(double) * (size_t)(i % NCELLS);
	if (i == stray_at)
		off = offsetof(struct state, energy); /* the planted bug */
	return (double *)(void *)((char *)&st + off);
}

static double step(long i)
{
	double moved = 0.0;
	for (int c = 0; c < NCELLS; c++) {
		double give = st.cells[c] * 0.25;
		st.cells[c] -= give;
		st.cells[(c + 1) % NCELLS] += give;
		moved += give;
	}
	double *dst = target(i);
	*dst = -1000.0 - (double)i; /* the stray write when dst is &st.energy */
	st.energy += 1.0;
	return moved;
}

int main(int argc, char **argv)
{
	long nsteps = argc > 1 ? atol(argv[1]) : 60;
	long sleep_ms = argc > 2 ? atol(argv[2]) : 100;
	FILE *log;

	stray_at = argc > 3 ? atol(argv[3]) : 40;
	if (argc > 4)
		log_path = argv[4];
	log = fopen(log_path, "a");
	if (!log) {
		perror(log_path);
		return 1;
	}
	for (int c = 0; c < NCELLS; c++)
		st.cells[c] = (double)(c + 1);
	printf("0 start\n");
	fflush(stdout);
	for (long i = 1; i <= nsteps; i++) {
		st.iteration = i;
		double moved = step(i);
		printf("%ld energy=%.1f cell=%.3f\n", i, st.energy, st.cells[i % NCELLS]);
		fflush(stdout);
		fprintf(log, "%ld %.3f\n", i, moved);
		fflush(log);
		pace_ms(sleep_ms);
	}
	printf("%ld final energy=%.1f\n", nsteps + 1, st.energy);
	fclose(log);
	return 0;
}
