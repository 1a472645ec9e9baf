// Cross-process futex wake-up latency, the floor under a blocking consumer (issue #19).
// Build and run: cc -O2 -o /tmp/futex-wake lab/probes/futex-wake.c && /tmp/futex-wake N PIN
// PIN 0: unpinned; 1: waker on cpu 0, sleeper on cpu 1 (an inter-processor wake-up);
// 2: both on cpu 1 (a same-cpu wake-up). Prints p50/p90/p99/min of publish -> sleeper running.
#define _GNU_SOURCE
#include <linux/futex.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sched.h>
static uint64_t now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1000000000ull+t.tv_nsec;}
struct shm { _Atomic uint32_t seq; _Atomic uint64_t stamp; _Atomic uint32_t done; };
static int cmp(const void*a,const void*b){uint64_t x=*(uint64_t*)a,y=*(uint64_t*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  int n=argc>1?atoi(argv[1]):2000; int pin=argc>2?atoi(argv[2]):0;
  struct shm*s=mmap(0,4096,PROT_READ|PROT_WRITE,MAP_SHARED|MAP_ANONYMOUS,-1,0);
  uint64_t*lat=mmap(0,n*8,PROT_READ|PROT_WRITE,MAP_SHARED|MAP_ANONYMOUS,-1,0);
  pid_t p=fork();
  if(p==0){ if(pin){cpu_set_t c;CPU_ZERO(&c);CPU_SET(1,&c);sched_setaffinity(0,sizeof c,&c);}
    uint32_t seen=0;
    for(int i=0;i<n;i++){ while(atomic_load(&s->seq)==seen) syscall(SYS_futex,&s->seq,FUTEX_WAIT,seen,0,0,0);
      uint64_t t=now(); seen=atomic_load(&s->seq); lat[i]=t-atomic_load(&s->stamp); atomic_store(&s->done,seen);}
    _exit(0);}
  if(pin){cpu_set_t c;CPU_ZERO(&c);CPU_SET(pin==2?1:0,&c);sched_setaffinity(0,sizeof c,&c);}
  for(int i=0;i<n;i++){ usleep(700); atomic_store(&s->stamp,now()); atomic_fetch_add(&s->seq,1); syscall(SYS_futex,&s->seq,FUTEX_WAKE,1,0,0,0);
    while(atomic_load(&s->done)!=(uint32_t)(i+1)) usleep(50);}
  waitpid(p,0,0); qsort(lat,n,8,cmp);
  printf("n=%d pin=%d p50=%.1fus p90=%.1fus p99=%.1fus min=%.1fus\n",n,pin,lat[n/2]/1e3,lat[n*9/10]/1e3,lat[n*99/100]/1e3,lat[0]/1e3);
}
