"""The message table behind :mod:`labkit.embedded.apiserver.protobuf`.

One line per field, ``NUMBER JSON_NAME [TYPE]``, grouped under each message name; the
field numbers are those of k8s.io/api and apimachinery ``generated.proto`` (checked
against the definitions embedded in kubectl 1.32). See the decoder's docstring for the
type notation.
"""

from __future__ import annotations

SCHEMA_TEXT = """
ObjectMeta
  1 name
  2 generateName
  3 namespace
  4 selfLink
  5 uid
  6 resourceVersion
  7 generation int64
  8 creationTimestamp Time
  9 deletionTimestamp Time
  10 deletionGracePeriodSeconds *int64
  11 labels map[string]
  12 annotations map[string]
  13 ownerReferences []OwnerReference
  14 finalizers []string
  17 managedFields []ManagedFieldsEntry
OwnerReference
  1 kind *string
  3 name *string
  4 uid *string
  5 apiVersion *string
  6 controller *bool
  7 blockOwnerDeletion *bool
ManagedFieldsEntry
  1 manager
  2 operation
  3 apiVersion
  4 time Time
  6 fieldsType
  7 fieldsV1 FieldsV1
  8 subresource
LabelSelector
  1 matchLabels map[string]
  2 matchExpressions []LabelSelectorRequirement
LabelSelectorRequirement
  1 key *string
  2 operator *string
  3 values []string
Condition
  1 type *string
  2 status *string
  3 observedGeneration int64
  4 lastTransitionTime Time
  5 reason *string
  6 message *string
ObjectReference
  1 kind
  2 namespace
  3 name
  4 uid
  5 apiVersion
  6 resourceVersion
  7 fieldPath
LocalObjectReference
  1 name

Namespace
  1 metadata ObjectMeta
  2 spec NamespaceSpec
  3 status NamespaceStatus
NamespaceSpec
  1 finalizers []string
NamespaceStatus
  1 phase
  2 conditions []NamespaceCondition
NamespaceCondition
  1 type *string
  2 status *string
  4 lastTransitionTime Time
  5 reason
  6 message

Pod
  1 metadata ObjectMeta
  2 spec PodSpec
  3 status PodStatus
PodTemplateSpec
  1 metadata ObjectMeta
  2 spec PodSpec
PodSpec
  1 volumes []Volume
  2 containers []Container
  3 restartPolicy
  4 terminationGracePeriodSeconds *int64
  5 activeDeadlineSeconds *int64
  6 dnsPolicy
  7 nodeSelector map[string]
  8 serviceAccountName
  9 serviceAccount
  10 nodeName
  11 hostNetwork bool
  12 hostPID bool
  13 hostIPC bool
  14 securityContext PodSecurityContext
  15 imagePullSecrets []LocalObjectReference
  16 hostname
  17 subdomain
  18 affinity Affinity
  19 schedulerName
  20 initContainers []Container
  21 automountServiceAccountToken *bool
  22 tolerations []Toleration
  23 hostAliases []HostAlias
  24 priorityClassName
  25 priority *int32
  26 dnsConfig PodDNSConfig
  27 shareProcessNamespace *bool
  28 readinessGates []PodReadinessGate
  29 runtimeClassName *string
  30 enableServiceLinks *bool
  31 preemptionPolicy *string
  32 overhead map[Quantity]
  33 topologySpreadConstraints []TopologySpreadConstraint
  34 ephemeralContainers []EphemeralContainer
  35 setHostnameAsFQDN *bool
  36 os PodOS
  37 hostUsers *bool
  38 schedulingGates []PodSchedulingGate
  39 resourceClaims []PodResourceClaim
  40 resources ResourceRequirements
Container
  1 name *string
  2 image
  3 command []string
  4 args []string
  5 workingDir
  6 ports []ContainerPort
  7 env []EnvVar
  8 resources ResourceRequirements
  9 volumeMounts []VolumeMount
  10 livenessProbe Probe
  11 readinessProbe Probe
  12 lifecycle Lifecycle
  13 terminationMessagePath
  14 imagePullPolicy
  15 securityContext SecurityContext
  16 stdin bool
  17 stdinOnce bool
  18 tty bool
  19 envFrom []EnvFromSource
  20 terminationMessagePolicy
  21 volumeDevices []VolumeDevice
  22 startupProbe Probe
  23 resizePolicy []ContainerResizePolicy
  24 restartPolicy *string
EphemeralContainer
  1 - Container
  2 targetContainerName
ContainerPort
  1 name
  2 hostPort int32
  3 containerPort *int32
  4 protocol
  5 hostIP
EnvVar
  1 name *string
  2 value
  3 valueFrom EnvVarSource
EnvVarSource
  1 fieldRef ObjectFieldSelector
  2 resourceFieldRef ResourceFieldSelector
  3 configMapKeyRef ConfigMapKeySelector
  4 secretKeyRef SecretKeySelector
ObjectFieldSelector
  1 apiVersion
  2 fieldPath *string
ResourceFieldSelector
  1 containerName
  2 resource *string
  3 divisor Quantity
ConfigMapKeySelector
  1 - LocalObjectReference
  2 key *string
  3 optional *bool
SecretKeySelector
  1 - LocalObjectReference
  2 key *string
  3 optional *bool
EnvFromSource
  1 prefix
  2 configMapRef ConfigMapEnvSource
  3 secretRef SecretEnvSource
ConfigMapEnvSource
  1 - LocalObjectReference
  2 optional *bool
SecretEnvSource
  1 - LocalObjectReference
  2 optional *bool
ResourceRequirements
  1 limits map[Quantity]
  2 requests map[Quantity]
  3 claims []ResourceClaim
ResourceClaim
  1 name *string
  2 request
VolumeMount
  1 name *string
  2 readOnly bool
  3 mountPath *string
  4 subPath
  5 mountPropagation *string
  6 subPathExpr
  7 recursiveReadOnly *string
VolumeDevice
  1 name *string
  2 devicePath *string
ContainerResizePolicy
  1 resourceName *string
  2 restartPolicy *string
Probe
  1 - ProbeHandler
  2 initialDelaySeconds int32
  3 timeoutSeconds int32
  4 periodSeconds int32
  5 successThreshold int32
  6 failureThreshold int32
  7 terminationGracePeriodSeconds *int64
ProbeHandler
  1 exec ExecAction
  2 httpGet HTTPGetAction
  3 tcpSocket TCPSocketAction
  4 grpc GRPCAction
Lifecycle
  1 postStart LifecycleHandler
  2 preStop LifecycleHandler
LifecycleHandler
  1 exec ExecAction
  2 httpGet HTTPGetAction
  3 tcpSocket TCPSocketAction
  4 sleep SleepAction
ExecAction
  1 command []string
HTTPGetAction
  1 path
  2 port IntOrString
  3 host
  4 scheme
  5 httpHeaders []HTTPHeader
HTTPHeader
  1 name *string
  2 value *string
TCPSocketAction
  1 port IntOrString
  2 host
GRPCAction
  1 port *int32
  2 service *string
SleepAction
  1 seconds *int64
SecurityContext
  1 capabilities Capabilities
  2 privileged *bool
  3 seLinuxOptions SELinuxOptions
  4 runAsUser *int64
  5 runAsNonRoot *bool
  6 readOnlyRootFilesystem *bool
  7 allowPrivilegeEscalation *bool
  8 runAsGroup *int64
  9 procMount *string
  10 windowsOptions WindowsSecurityContextOptions
  11 seccompProfile SeccompProfile
  12 appArmorProfile AppArmorProfile
PodSecurityContext
  1 seLinuxOptions SELinuxOptions
  2 runAsUser *int64
  3 runAsNonRoot *bool
  4 supplementalGroups []int64
  5 fsGroup *int64
  6 runAsGroup *int64
  7 sysctls []Sysctl
  8 windowsOptions WindowsSecurityContextOptions
  9 fsGroupChangePolicy *string
  10 seccompProfile SeccompProfile
  11 appArmorProfile AppArmorProfile
  12 supplementalGroupsPolicy *string
  13 seLinuxChangePolicy *string
Capabilities
  1 add []string
  2 drop []string
SELinuxOptions
  1 user
  2 role
  3 type
  4 level
WindowsSecurityContextOptions
  1 gmsaCredentialSpecName *string
  2 gmsaCredentialSpec *string
  3 runAsUserName *string
  4 hostProcess *bool
SeccompProfile
  1 type *string
  2 localhostProfile *string
AppArmorProfile
  1 type *string
  2 localhostProfile *string
Sysctl
  1 name *string
  2 value *string
Volume
  1 name *string
  2 - VolumeSource
VolumeSource
  1 hostPath HostPathVolumeSource
  2 emptyDir EmptyDirVolumeSource
  6 secret SecretVolumeSource
  10 persistentVolumeClaim PersistentVolumeClaimVolumeSource
  16 downwardAPI DownwardAPIVolumeSource
  19 configMap ConfigMapVolumeSource
  26 projected ProjectedVolumeSource
  30 image ImageVolumeSource
HostPathVolumeSource
  1 path *string
  2 type *string
EmptyDirVolumeSource
  1 medium
  2 sizeLimit Quantity
SecretVolumeSource
  1 secretName
  2 items []KeyToPath
  3 defaultMode *int32
  4 optional *bool
ConfigMapVolumeSource
  1 - LocalObjectReference
  2 items []KeyToPath
  3 defaultMode *int32
  4 optional *bool
KeyToPath
  1 key *string
  2 path *string
  3 mode *int32
PersistentVolumeClaimVolumeSource
  1 claimName *string
  2 readOnly bool
DownwardAPIVolumeSource
  1 items []DownwardAPIVolumeFile
  2 defaultMode *int32
DownwardAPIVolumeFile
  1 path *string
  2 fieldRef ObjectFieldSelector
  3 resourceFieldRef ResourceFieldSelector
  4 mode *int32
ProjectedVolumeSource
  1 sources []VolumeProjection
  2 defaultMode *int32
VolumeProjection
  1 secret SecretProjection
  2 downwardAPI DownwardAPIProjection
  3 configMap ConfigMapProjection
  4 serviceAccountToken ServiceAccountTokenProjection
SecretProjection
  1 - LocalObjectReference
  2 items []KeyToPath
  4 optional *bool
ConfigMapProjection
  1 - LocalObjectReference
  2 items []KeyToPath
  4 optional *bool
DownwardAPIProjection
  1 items []DownwardAPIVolumeFile
ServiceAccountTokenProjection
  1 audience
  2 expirationSeconds *int64
  3 path *string
ImageVolumeSource
  1 reference
  2 pullPolicy
Toleration
  1 key
  2 operator
  3 value
  4 effect
  5 tolerationSeconds *int64
Affinity
  1 nodeAffinity NodeAffinity
  2 podAffinity PodAffinity
  3 podAntiAffinity PodAntiAffinity
NodeAffinity
  1 requiredDuringSchedulingIgnoredDuringExecution NodeSelector
  2 preferredDuringSchedulingIgnoredDuringExecution []PreferredSchedulingTerm
NodeSelector
  1 nodeSelectorTerms []NodeSelectorTerm
NodeSelectorTerm
  1 matchExpressions []NodeSelectorRequirement
  2 matchFields []NodeSelectorRequirement
NodeSelectorRequirement
  1 key *string
  2 operator *string
  3 values []string
PreferredSchedulingTerm
  1 weight *int32
  2 preference NodeSelectorTerm
PodAffinity
  1 requiredDuringSchedulingIgnoredDuringExecution []PodAffinityTerm
  2 preferredDuringSchedulingIgnoredDuringExecution []WeightedPodAffinityTerm
PodAntiAffinity
  1 requiredDuringSchedulingIgnoredDuringExecution []PodAffinityTerm
  2 preferredDuringSchedulingIgnoredDuringExecution []WeightedPodAffinityTerm
PodAffinityTerm
  1 labelSelector LabelSelector
  2 namespaces []string
  3 topologyKey *string
  4 namespaceSelector LabelSelector
  5 matchLabelKeys []string
  6 mismatchLabelKeys []string
WeightedPodAffinityTerm
  1 weight *int32
  2 podAffinityTerm PodAffinityTerm
HostAlias
  1 ip *string
  2 hostnames []string
PodDNSConfig
  1 nameservers []string
  2 searches []string
  3 options []PodDNSConfigOption
PodDNSConfigOption
  1 name
  2 value *string
TopologySpreadConstraint
  1 maxSkew *int32
  2 topologyKey *string
  3 whenUnsatisfiable *string
  4 labelSelector LabelSelector
  5 minDomains *int32
  6 nodeAffinityPolicy *string
  7 nodeTaintsPolicy *string
  8 matchLabelKeys []string
PodReadinessGate
  1 conditionType *string
PodOS
  1 name *string
PodSchedulingGate
  1 name *string
PodResourceClaim
  1 name *string
  3 resourceClaimName *string
  4 resourceClaimTemplateName *string
PodStatus
  1 phase
  2 conditions []PodCondition
  3 message
  4 reason
  5 hostIP
  6 podIP
  7 startTime Time
  8 containerStatuses []ContainerStatus
  9 qosClass
  10 initContainerStatuses []ContainerStatus
  11 nominatedNodeName
  12 podIPs []PodIP
  13 ephemeralContainerStatuses []ContainerStatus
  14 resize
  16 hostIPs []HostIP
PodCondition
  1 type *string
  2 status *string
  3 lastProbeTime Time
  4 lastTransitionTime Time
  5 reason
  6 message
PodIP
  1 ip *string
HostIP
  1 ip *string
ContainerStatus
  1 name *string
  2 state ContainerState
  3 lastState ContainerState
  4 ready *bool
  5 restartCount *int32
  6 image *string
  7 imageID *string
  8 containerID
  9 started *bool
  10 allocatedResources map[Quantity]
  11 resources ResourceRequirements
ContainerState
  1 waiting ContainerStateWaiting
  2 running ContainerStateRunning
  3 terminated ContainerStateTerminated
ContainerStateWaiting
  1 reason
  2 message
ContainerStateRunning
  1 startedAt Time
ContainerStateTerminated
  1 exitCode *int32
  2 signal int32
  3 reason
  4 message
  5 startedAt Time
  6 finishedAt Time
  7 containerID

Service
  1 metadata ObjectMeta
  2 spec ServiceSpec
  3 status ServiceStatus
ServiceSpec
  1 ports []ServicePort
  2 selector map[string]
  3 clusterIP
  4 type
  5 externalIPs []string
  7 sessionAffinity
  8 loadBalancerIP
  9 loadBalancerSourceRanges []string
  10 externalName
  11 externalTrafficPolicy
  12 healthCheckNodePort int32
  13 publishNotReadyAddresses bool
  14 sessionAffinityConfig SessionAffinityConfig
  17 ipFamilyPolicy *string
  18 clusterIPs []string
  19 ipFamilies []string
  20 allocateLoadBalancerNodePorts *bool
  21 loadBalancerClass *string
  22 internalTrafficPolicy *string
  23 trafficDistribution *string
ServicePort
  1 name
  2 protocol
  3 port *int32
  4 targetPort IntOrString
  5 nodePort int32
  6 appProtocol *string
SessionAffinityConfig
  1 clientIP ClientIPConfig
ClientIPConfig
  1 timeoutSeconds *int32
ServiceStatus
  1 loadBalancer LoadBalancerStatus
  2 conditions []Condition
LoadBalancerStatus
  1 ingress []LoadBalancerIngress
LoadBalancerIngress
  1 ip
  2 hostname
  3 ipMode *string
  4 ports []PortStatus
PortStatus
  1 port *int32
  2 protocol *string
  3 error *string

Endpoints
  1 metadata ObjectMeta
  2 subsets []EndpointSubset
EndpointSubset
  1 addresses []EndpointAddress
  2 notReadyAddresses []EndpointAddress
  3 ports []EndpointPort
EndpointAddress
  1 ip *string
  2 targetRef ObjectReference
  3 hostname
  4 nodeName *string
EndpointPort
  1 name
  2 port *int32
  3 protocol
  4 appProtocol *string

ConfigMap
  1 metadata ObjectMeta
  2 data map[string]
  3 binaryData map[bytes]
  4 immutable *bool
Secret
  1 metadata ObjectMeta
  2 data map[bytes]
  3 type
  4 stringData map[string]
  5 immutable *bool
ServiceAccount
  1 metadata ObjectMeta
  2 secrets []ObjectReference
  3 imagePullSecrets []LocalObjectReference
  4 automountServiceAccountToken *bool

Event
  1 metadata ObjectMeta
  2 involvedObject ObjectReference
  3 reason
  4 message
  5 source EventSource
  6 firstTimestamp Time
  7 lastTimestamp Time
  8 count int32
  9 type
  10 eventTime MicroTime
  11 series EventSeries
  12 action
  13 related ObjectReference
  14 reportingComponent *string
  15 reportingInstance *string
EventSource
  1 component
  2 host
EventSeries
  1 count int32
  2 lastObservedTime MicroTime

Node
  1 metadata ObjectMeta
  2 spec NodeSpec
  3 status NodeStatus
NodeSpec
  1 podCIDR
  2 externalID
  3 providerID
  4 unschedulable bool
  5 taints []Taint
  7 podCIDRs []string
Taint
  1 key *string
  2 value
  3 effect *string
  4 timeAdded Time
NodeStatus
  1 capacity map[Quantity]
  2 allocatable map[Quantity]
  3 phase
  4 conditions []NodeCondition
  5 addresses []NodeAddress
  6 daemonEndpoints NodeDaemonEndpoints
  7 nodeInfo NodeSystemInfo
  8 images []ContainerImage
  9 volumesInUse []string
  10 volumesAttached []AttachedVolume
NodeCondition
  1 type *string
  2 status *string
  3 lastHeartbeatTime Time
  4 lastTransitionTime Time
  5 reason
  6 message
NodeAddress
  1 type *string
  2 address *string
NodeDaemonEndpoints
  1 kubeletEndpoint DaemonEndpoint
DaemonEndpoint
  1 Port *int32
NodeSystemInfo
  1 machineID *string
  2 systemUUID *string
  3 bootID *string
  4 kernelVersion *string
  5 osImage *string
  6 containerRuntimeVersion *string
  7 kubeletVersion *string
  8 kubeProxyVersion *string
  9 operatingSystem *string
  10 architecture *string
ContainerImage
  1 names []string
  2 sizeBytes int64
AttachedVolume
  1 name *string
  2 devicePath *string

Deployment
  1 metadata ObjectMeta
  2 spec DeploymentSpec
  3 status DeploymentStatus
DeploymentSpec
  1 replicas *int32
  2 selector LabelSelector
  3 template PodTemplateSpec
  4 strategy DeploymentStrategy
  5 minReadySeconds int32
  6 revisionHistoryLimit *int32
  7 paused bool
  9 progressDeadlineSeconds *int32
DeploymentStrategy
  1 type
  2 rollingUpdate RollingUpdateDeployment
RollingUpdateDeployment
  1 maxUnavailable IntOrString
  2 maxSurge IntOrString
DeploymentStatus
  1 observedGeneration int64
  2 replicas int32
  3 updatedReplicas int32
  4 availableReplicas int32
  5 unavailableReplicas int32
  6 conditions []DeploymentCondition
  7 readyReplicas int32
  8 collisionCount *int32
DeploymentCondition
  1 type *string
  2 status *string
  4 reason
  5 message
  6 lastUpdateTime Time
  7 lastTransitionTime Time
ReplicaSet
  1 metadata ObjectMeta
  2 spec ReplicaSetSpec
  3 status ReplicaSetStatus
ReplicaSetSpec
  1 replicas *int32
  2 selector LabelSelector
  3 template PodTemplateSpec
  4 minReadySeconds int32
ReplicaSetStatus
  1 replicas *int32
  2 fullyLabeledReplicas int32
  3 observedGeneration int64
  4 readyReplicas int32
  5 availableReplicas int32
  6 conditions []ReplicaSetCondition
ReplicaSetCondition
  1 type *string
  2 status *string
  3 lastTransitionTime Time
  4 reason
  5 message

Scale
  1 metadata ObjectMeta
  2 spec ScaleSpec
  3 status ScaleStatus
ScaleSpec
  1 replicas int32
ScaleStatus
  1 replicas *int32
  2 selector

EndpointSlice
  1 metadata ObjectMeta
  2 endpoints []SliceEndpoint
  3 ports []SlicePort
  4 addressType *string
SliceEndpoint
  1 addresses []string
  2 conditions EndpointConditions
  3 hostname *string
  4 targetRef ObjectReference
  5 deprecatedTopology map[string]
  6 nodeName *string
  7 zone *string
  8 hints EndpointHints
EndpointConditions
  1 ready *bool
  2 serving *bool
  3 terminating *bool
EndpointHints
  1 forZones []ForZone
ForZone
  1 name *string
SlicePort
  1 name *string
  2 protocol *string
  3 port *int32
  4 appProtocol *string

Lease
  1 metadata ObjectMeta
  2 spec LeaseSpec
LeaseSpec
  1 holderIdentity *string
  2 leaseDurationSeconds *int32
  3 acquireTime MicroTime
  4 renewTime MicroTime
  5 leaseTransitions *int32
  6 strategy *string
  7 preferredHolder *string
"""
"""The message table. ``SliceEndpoint``/``SlicePort`` are discovery/v1's
``Endpoint``/``EndpointPort``, renamed apart from core/v1's ``EndpointPort``."""

KINDS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "Pod"): "Pod",
    ("v1", "Service"): "Service",
    ("v1", "Endpoints"): "Endpoints",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Secret"): "Secret",
    ("v1", "Event"): "Event",
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("v1", "Node"): "Node",
    ("apps/v1", "Deployment"): "Deployment",
    ("apps/v1", "ReplicaSet"): "ReplicaSet",
    ("autoscaling/v1", "Scale"): "Scale",
    ("discovery.k8s.io/v1", "EndpointSlice"): "EndpointSlice",
    ("coordination.k8s.io/v1", "Lease"): "Lease",
}
"""(apiVersion, kind) of every decodable object → its message in :data:`SCHEMA`."""
