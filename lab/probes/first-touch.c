// First touch of fresh anonymous memory vs a second pass over it: what a freshly allocated
// buffer of the archive reader's window size costs on this VM (4 KiB pages, or transparent huge
// pages with MADV_HUGEPAGE).
// Build and run: cc -O2 -o /tmp/first-touch lab/probes/first-touch.c && /tmp/first-touch MIB HUGE
// MIB: buffer size in MiB (72 = one window at 22x the bench's rate); HUGE: 1 = madvise huge pages.
// Prints five rounds of: fresh mapping written once, then the same mapping written again.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  size_t n=(size_t)atol(argv[1])<<20; int huge=atoi(argv[2]);
  for(int r=0;r<5;r++){
    char*p=mmap(0,n,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0);
    if(huge) madvise(p,n,MADV_HUGEPAGE);
    double t=now(); memset(p,1,n); double a=now()-t;
    t=now(); memset(p,2,n); double b=now()-t;
    printf("fresh %.1f ms (%.2f GB/s)  reuse %.1f ms\n",a*1e3,n/a/1e9,b*1e3);
    munmap(p,n);
  }
}
