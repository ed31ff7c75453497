/* nb_fit's progress bar (progress.c) */
#ifndef NB_NN_PROGRESS_H
#define NB_NN_PROGRESS_H

#include "nabla.h"

#include <stdio.h>

/* "\r", the bar for p fitted to fp's terminal, the rest of the line erased */
void nb__progress_draw(FILE *fp, const nb_progress *p);
/* "\r" and the line erased */
void nb__progress_clear(FILE *fp);

#endif
